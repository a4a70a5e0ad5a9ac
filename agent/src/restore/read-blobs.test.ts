import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Frame } from '@bulwark/proto';
import type { GatewayLink } from '../transport/link.js';
import { readBlobBatches } from './restore.js';

/** Answers each ReadBlobs with the blobs `answer` picks, then ReadDone, as a gateway would on one connection. */
class ScriptedGateway extends EventEmitter {
  private next = 1;
  private readonly replies = new Map<number, (frame: Frame) => void>();
  readonly reads: Buffer[][] = [];
  constructor(private readonly answer: (ids: Buffer[]) => { sent: Buffer[]; missing: number[] }) { super(); }
  newRequestId(): number { return this.next++; }
  awaitReply(requestId: number): Promise<Frame> { return new Promise((resolve) => this.replies.set(requestId, resolve)); }
  async send(frame: Frame): Promise<void> {
    const { requestId, blobIds } = frame.readBlobs!;
    this.reads.push(blobIds);
    const { sent, missing } = this.answer(blobIds);
    setImmediate(() => {
      this.emit('blobData', { requestId, blobs: sent.map((id) => ({ id, envelope: Buffer.alloc(8) })) });
      this.replies.get(requestId)!({ readDone: { requestId, missing } });
    });
  }
}

const ids = Array.from({ length: 40 }, () => randomBytes(32));

describe('reading blobs for a restore', () => {
  it('hands over every blob, in reads cut at the breaks asked for', async () => {
    const gateway = new ScriptedGateway((asked) => ({ sent: asked, missing: [] }));
    const got: string[] = [];
    await readBlobBatches(gateway as unknown as GatewayLink, 'agent', ids, (blobs) => { for (const b of blobs) got.push(b.id.toString('hex')); }, { breaks: [10, 25] });
    expect(got.sort()).toEqual(ids.map((id) => id.toString('hex')).sort());
    expect(gateway.reads.map((r) => r.length).sort((a, b) => a - b)).toEqual([10, 15, 15]);
  });

  it('fails, naming the point damaged, when the gateway reports blobs missing', async () => {
    const gateway = new ScriptedGateway((asked) => ({ sent: asked.slice(1), missing: [0] }));
    await expect(readBlobBatches(gateway as unknown as GatewayLink, 'agent', ids, () => undefined)).rejects.toThrow(/lacks 1 blob\(s\) of this point .* run a verify/);
  });

  it('fails instead of waiting for ever when a read ends without a blob it neither sent nor reported missing', async () => {
    const dropped = ids[7];
    const gateway = new ScriptedGateway((asked) => ({ sent: asked.filter((id) => !id.equals(dropped)).concat(asked[0]), missing: [] }));
    await expect(readBlobBatches(gateway as unknown as GatewayLink, 'agent', ids, () => undefined)).rejects.toThrow(new RegExp(`ended a read without 1 blob\\(s\\) it did not report missing \\(first ${dropped.toString('hex')}\\)`));
  });
});
