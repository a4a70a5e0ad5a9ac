/**
 * @module Change tracking for volumes: which blocks a backup must read, from
 * the best provider that can vouch for its answer. Providers are tried in
 * order — the kernel tracker's dirty bitmap, a hash-compare scan against the
 * previous point's block hashes, a full read — and each one that declines
 * says why, so a point never silently misses a write. The trust rule for
 * bitmaps is written down in BITMAP-FORMAT.md ("When a bitmap is trusted").
 */
import fs from 'node:fs';
import { BitmapError, blockCount, dirtyRuns, parseBitmap, type ChangeBitmap } from './bitmap.js';
import type { CbtPosition, VolumeMemory } from '../sources/volume/volume-state.js';

export type ProviderName = 'cbt-bitmap' | 'hash-scan' | 'full-read';

export interface VolumeIdentity { path: string; sizeBytes: number; blockSize: number; blockDevice: boolean; deviceMajor: number; deviceMinor: number; hashAlgorithm: string }

export interface TrackingContext {
  volume: VolumeIdentity;
  /** What the agent remembers from the previous point of this volume, if anything usable. */
  memory?: VolumeMemory;
  /** A dumped bitmap (`--cbt-bitmap FILE`), read and parsed. */
  bitmap?: { file: string; mtimeMs: number; parsed?: ChangeBitmap; error?: string };
}

export interface ChangeSet {
  provider: ProviderName;
  /** Blocks to read: [start, count, …]. */
  runs: number[];
  /** Compare read blocks with the previous point's hashes (false: every block read is new). */
  compare: boolean;
  /** Why better providers declined, in order. */
  declined: string[];
  /** The tracker position to remember with the point (the baseline for the next bitmap). */
  position?: CbtPosition;
}

/** One way of knowing what changed. `propose` returns a change set, or the reason it cannot vouch for one. */
export interface ChangeProvider {
  readonly name: ProviderName;
  propose(ctx: TrackingContext): Omit<ChangeSet, 'declined' | 'position'> | { declined: string };
}

export function positionOf(bitmap: ChangeBitmap): CbtPosition {
  return { generation: bitmap.generation, sequence: bitmap.sequence.toString(), deviceMajor: bitmap.deviceMajor, deviceMinor: bitmap.deviceMinor };
}

/** Whether a bitmap describes this volume at all (size, block size, device). */
function describesVolume(b: ChangeBitmap, v: VolumeIdentity): string | undefined {
  if (b.blockSize !== v.blockSize) return `its block size is ${b.blockSize}, not ${v.blockSize}`;
  if (b.deviceSizeBytes !== v.sizeBytes) return `it covers ${b.deviceSizeBytes} bytes but ${v.path} is ${v.sizeBytes} bytes`;
  if (v.blockDevice && (b.deviceMajor !== v.deviceMajor || b.deviceMinor !== v.deviceMinor)) return `it is for device ${b.deviceMajor}:${b.deviceMinor}, not ${v.deviceMajor}:${v.deviceMinor}`;
  return undefined;
}

export const bitmapProvider: ChangeProvider = {
  name: 'cbt-bitmap',
  propose({ volume, memory, bitmap }) {
    if (!bitmap) return { declined: 'no changed-block bitmap was given' };
    const what = `the bitmap ${bitmap.file}`;
    if (!bitmap.parsed) return { declined: `${what} is unusable: ${bitmap.error}` };
    const b = bitmap.parsed;
    const mismatch = describesVolume(b, volume);
    if (mismatch) return { declined: `${what} does not describe this volume: ${mismatch}` };
    if (!memory) return { declined: `${what} has nothing to continue from: no previous point of this volume is remembered` };
    const last = memory.record.cbt;
    if (!last) return { declined: `${what} cannot be trusted yet: the previous point (${memory.record.pointId}) recorded no tracker position` };
    if (last.generation !== b.generation) return { declined: `${what} has generation ${b.generation}, but the previous point was taken in generation ${last.generation}: the tracker restarted or was reset, so writes may be missing from it` };
    const expected = BigInt(last.sequence) + 1n;
    if (b.sequence !== expected) return { declined: `${what} is dump ${b.sequence} of its generation, but the next after the previous point's is ${expected}: ${b.sequence < expected ? 'it is stale' : 'a dump in between was taken by someone else and its bits are not in this one'}` };
    if (bitmap.mtimeMs < memory.record.readStartedMs) return { declined: `${what} was written before the previous point was read, so it cannot cover the writes since` };
    return { provider: 'cbt-bitmap', runs: dirtyRuns(b.bits, blockCount(volume.sizeBytes, volume.blockSize)), compare: true };
  },
};

export const scanProvider: ChangeProvider = {
  name: 'hash-scan',
  propose({ volume, memory }) {
    if (!memory) return { declined: 'no previous point of this volume is remembered to compare with' };
    const r = memory.record;
    if (r.sizeBytes !== volume.sizeBytes) return { declined: `the volume is ${volume.sizeBytes} bytes now but was ${r.sizeBytes} at the previous point` };
    if (r.blockSize !== volume.blockSize || r.hashAlgorithm !== volume.hashAlgorithm) return { declined: `the previous point's block hashes are in another format (${r.hashAlgorithm}, ${r.blockSize}-byte blocks)` };
    return { provider: 'hash-scan', runs: [0, blockCount(volume.sizeBytes, volume.blockSize)], compare: true };
  },
};

export const fullReadProvider: ChangeProvider = {
  name: 'full-read',
  propose({ volume }) {
    const blocks = blockCount(volume.sizeBytes, volume.blockSize);
    return { provider: 'full-read', runs: blocks > 0 ? [0, blocks] : [], compare: false };
  },
};

export const PROVIDERS: readonly ChangeProvider[] = [bitmapProvider, scanProvider, fullReadProvider];

/** Ask each provider in turn; the last (a full read) never declines. */
export function chooseChangeSet(ctx: TrackingContext, providers: readonly ChangeProvider[] = PROVIDERS, skip: ProviderName[] = []): ChangeSet {
  const declined: string[] = [];
  // A bitmap that describes the volume becomes the baseline for the next one, trusted or not:
  // it was dumped before this point's read, so the next dump covers every write after it.
  const b = ctx.bitmap?.parsed;
  const position = b && !describesVolume(b, ctx.volume) ? positionOf(b) : ctx.bitmap ? undefined : ctx.memory?.record.cbt;
  for (const provider of providers) {
    if (skip.includes(provider.name)) { declined.push(`${provider.name} skipped`); continue; }
    const answer = provider.propose(ctx);
    if ('declined' in answer) { declined.push(`${provider.name}: ${answer.declined}`); continue; }
    return { ...answer, declined, position };
  }
  throw new Error('no change provider accepted the volume (the full read should always)');
}

/** Read and parse a bitmap file; failures become a reason, not an exception. */
export function readBitmapFile(file: string): NonNullable<TrackingContext['bitmap']> {
  try {
    const st = fs.statSync(file);
    const data = fs.readFileSync(file);
    try {
      return { file, mtimeMs: st.mtimeMs, parsed: parseBitmap(data) };
    } catch (err) {
      if (err instanceof BitmapError) return { file, mtimeMs: st.mtimeMs, error: err.message };
      throw err;
    }
  } catch (err) {
    return { file, mtimeMs: 0, error: (err as Error).message };
  }
}
