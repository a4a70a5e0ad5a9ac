/**
 * @module What the agent remembers about a volume between points, kept in
 * the state directory (never on the gateway): the point it belongs to, the
 * change-tracker position consumed for it, one 8-byte block hash per 4 KiB
 * block, and the point's volume map. One file per volume, written to a
 * temporary name and fsynced while the point commits, renamed once it is, and
 * checked (SHA-256) when read: a torn or stale file is never half-used.
 * Layout: "BWVOLST1" | u32 json length | json | block hashes | group hashes | VolumeMap | SHA-256.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { GROUP_BLOCKS } from './geometry.js';
import { stagePrivate, type StagedFile } from '../../state/state.js';

const MAGIC = Buffer.from('BWVOLST1', 'latin1');

/** The tracker position consumed (or carried forward) for the point. */
export interface CbtPosition { generation: string; sequence: string; deviceMajor: number; deviceMinor: number }

export interface VolumeRecord {
  version: 1;
  path: string;
  pointId: string;
  sizeBytes: number;
  blockSize: number;
  hashAlgorithm: string;
  /** When reading for this point began (ms since the epoch): a bitmap dumped before it cannot cover what came after. */
  readStartedMs: number;
  cbt?: CbtPosition;
}

export interface VolumeMemory {
  record: VolumeRecord;
  /** hashes[i] is block i's 8-byte change hash (little-endian u64). */
  hashes: BigUint64Array;
  /** groups[g] is the hash of blocks 16g…16g+15 together (0: unknown). */
  groups: BigUint64Array;
  /** The point's volume map, encoded (storage.proto VolumeMap): read back with BlockLocations.fromEncodedMap. */
  encodedMap: Buffer;
}

export function volumeStateFile(cacheDir: string, sourcePath: string): string {
  const key = createHash('sha256').update(`volume\0${path.resolve(sourcePath)}`).digest('hex').slice(0, 32);
  return path.join(cacheDir, 'volumes', `${key}.state`);
}

export class VolumeStateError extends Error {}

export function loadVolumeMemory(file: string): VolumeMemory | undefined {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const fail = (why: string): never => { throw new VolumeStateError(`${file}: ${why}`); };
  if (data.length < 8 + 4 + 32 || !data.subarray(0, 8).equals(MAGIC)) fail('not a volume state file');
  const body = data.subarray(0, data.length - 32);
  if (!createHash('sha256').update(body).digest().equals(data.subarray(data.length - 32))) fail('fails its checksum');
  const jsonLength = data.readUInt32LE(8);
  const record = JSON.parse(data.subarray(12, 12 + jsonLength).toString('utf8')) as VolumeRecord;
  if (record.version !== 1) fail(`version ${record.version} is not supported`);
  const blocks = Math.ceil(record.sizeBytes / record.blockSize);
  const hashStart = 12 + jsonLength;
  const groupCount = Math.ceil(blocks / GROUP_BLOCKS);
  const hashEnd = hashStart + blocks * 8;
  const groupEnd = hashEnd + groupCount * 8;
  if (groupEnd > body.length) fail('is truncated');
  // Copy into aligned buffers: offsets inside the file need not be multiples of 8.
  const hashes = new BigUint64Array(blocks);
  Buffer.from(hashes.buffer).set(data.subarray(hashStart, hashEnd));
  const groups = new BigUint64Array(groupCount);
  Buffer.from(groups.buffer).set(data.subarray(hashEnd, groupEnd));
  return { record, hashes, groups, encodedMap: body.subarray(groupEnd) };
}

/** Written and fsynced under a temporary name; install() puts it in place (once its point is committed). */
export function stageVolumeMemory(file: string, memory: VolumeMemory): StagedFile {
  const json = Buffer.from(JSON.stringify(memory.record));
  const head = Buffer.alloc(12);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(json.length, 8);
  const hashes = Buffer.from(memory.hashes.buffer, memory.hashes.byteOffset, memory.hashes.byteLength);
  const groups = Buffer.from(memory.groups.buffer, memory.groups.byteOffset, memory.groups.byteLength);
  const digest = createHash('sha256').update(head).update(json).update(hashes).update(groups).update(memory.encodedMap).digest();
  return stagePrivate(file, [head, json, hashes, groups, memory.encodedMap, digest], true);
}
