#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS SSL_CERT_FILE=/dev/null node --use-openssl-ca --max-semi-space-size=1
/**
 * @module `bulwark-agent`: the host agent's command line.
 *
 * The young generation is kept small (the flag above; V8 reads it only at
 * start-up): the main thread's garbage is promises, stats and frame objects,
 * not data, and V8's default let it grow to 32 MiB. Measured on 20,000 files:
 * peak memory 320 → 270 MiB for a backup, 350 → 250 MiB for a restore, for
 * ~0.1 s more collection in a re-run with nothing changed.
 *
 * NODE_EXTRA_CA_CERTS is dropped before Node starts: Node parses that bundle
 * at start-up, before any code runs (25–30 ms here for the system's
 * certificates), and the agent has no use for it — it trusts only the site
 * CA it pinned at enrollment, for the gateway and the broker alike. For the
 * same reason it takes its root store from OpenSSL, pointed at no file:
 * Node 20 parses its bundled root certificates (~140, 33 ms here) when a TLS
 * context is first given a `ca`, only to see that the context does not use
 * them; an empty store costs nothing, and a context given a `ca` trusts
 * that CA alone either way.
 *
 * This file only starts what can start early and then loads the commands:
 * evaluating the rest of the agent's code (protobufjs, the crypto addons,
 * ws) takes ~0.1 s, which a volume backup's workers spend booting meanwhile.
 * The guess is made from argv alone; a wrong one costs or saves a little CPU,
 * never correctness.
 */
import { prestartVolumeWorkers } from '../sources/volume/worker-pool.js';

const [command, ...args] = process.argv.slice(2);
const given = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
// A bitmap usually names few blocks, which are read on the main thread: no workers.
if (command === 'backup' && given('--volume') && !given('--cbt-bitmap')) prestartVolumeWorkers();

await import('./commands.js');
