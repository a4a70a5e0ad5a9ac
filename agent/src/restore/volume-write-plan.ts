/**
 * @module How a volume restore writes its image. An incremental's map cuts
 * the first point's 1 MiB blobs into many short ranges around the 4 KiB
 * blocks later points changed; written range by range, the 2 GiB bench
 * image took 8,550 writes of 64 KiB–1 MiB and 14,000 smaller ones, each
 * waiting for the disk. So the blobs whose ranges are small (the changed
 * blocks) are opened first and kept in memory ("resident"), and every other
 * blob is written in runs: its plaintext with the resident ranges that fall
 * between its own laid over it, one write per run.
 *
 * Resident memory is bounded: the restore goes in windows, each a stretch
 * of the image whose runs need at most `residentLimit` bytes of resident
 * blobs; a changed-block blob covers a stretch of the image, so after many
 * incrementals each window needs a few of them from every point.
 */
import type { VolumeMap } from '@bulwark/proto';

/** A blob at several shifts whose ranges average under this is kept in memory and laid over the others. */
const SMALL_RANGE_BYTES = 64 * 1024;
export const RESIDENT_LIMIT_BYTES = 64 * 1024 * 1024;

/** A range of one blob's plaintext written at an image offset. */
export interface BlobTarget { imageOffset: number; blobOffset: number; length: number }

/** A resident range laid over a run: `residentOffset` is where its bytes are in the resident buffer. */
export interface Overlay { imageOffset: number; residentOffset: number; length: number }

/** One write: `length` bytes of the blob's plaintext from `blobOffset`, with `overlays` laid over it first. */
export interface WriteRun extends BlobTarget { overlays: Overlay[] }

export interface WriteWindow {
  /** Opened first, and kept: where each blob's plaintext goes in the resident buffer, and how much of it. */
  resident: Map<number, { offset: number; bytes: number }>;
  /** Then these, once every resident blob is in. */
  blobs: number[];
}

export interface VolumeWritePlan {
  /** In order: a window's resident blobs replace the last window's. */
  windows: WriteWindow[];
  /** The resident buffer's size: the most any window holds. */
  residentBytes: number;
  /** Ranges written as they are, per blob index: the first time the blob is opened. */
  pieces: Map<number, BlobTarget[]>;
  /** Runs per blob index. */
  runs: Map<number, WriteRun[]>;
  /** Per blob index, how much of its plaintext the map uses (from its start): about its size, to pace reads by. */
  blobBytes: Map<number, number>;
}

type Extent = VolumeMap['extents'][number];
/** An overlay before it has a place in a window's resident buffer. */
interface Laid { imageOffset: number; blob: number; blobOffset: number; length: number }

export function volumeWritePlan(map: VolumeMap, residentLimit = RESIDENT_LIMIT_BYTES): VolumeWritePlan {
  const extents = [...map.extents].sort((a, b) => a.offset - b.offset);
  const blobOf = (e: Extent) => e.blobIndex ?? 0;
  const stats = new Map<number, { ranges: number; bytes: number; needs: number; shift: number | null }>();
  for (const e of extents) {
    const b = blobOf(e);
    const blobOffset = e.blobOffset ?? 0;
    const s = stats.get(b);
    if (!s) { stats.set(b, { ranges: 1, bytes: e.length, needs: blobOffset + e.length, shift: e.offset - blobOffset }); continue; }
    s.ranges++;
    s.bytes += e.length;
    s.needs = Math.max(s.needs, blobOffset + e.length);
    // A blob placed at two shifts (the same data twice in the image) is written range by range: a run would change its plaintext under the other.
    if (s.shift !== e.offset - blobOffset) s.shift = null;
  }
  const small = new Set<number>();
  // Small: a blob of changed blocks, its short ranges strewn over the image (so at many shifts). A blob at one shift, however
  // cut up by later changes, is one whose runs they are laid over.
  for (const [b, s] of stats) if (s.shift === null && s.bytes / s.ranges < SMALL_RANGE_BYTES && s.needs <= residentLimit) small.add(b);

  const pieces = new Map<number, BlobTarget[]>();
  const addPiece = (b: number, imageOffset: number, blobOffset: number, length: number) => {
    let list = pieces.get(b);
    if (!list) pieces.set(b, (list = []));
    list.push({ imageOffset, blobOffset, length });
  };
  // Runs in image order, their overlays naming the small blob they come from.
  const drafts: { blob: number; run: BlobTarget; laid: Laid[] }[] = [];
  let open: (typeof drafts)[number] | undefined;
  /** Small ranges right after the open run: they join it only if the run's blob follows them. */
  let pending: Extent[] = [];
  const close = () => {
    if (open) drafts.push(open);
    open = undefined;
    for (const e of pending) addPiece(blobOf(e), e.offset, e.blobOffset ?? 0, e.length);
    pending = [];
  };
  let end = -1;
  for (const e of extents) {
    const b = blobOf(e);
    const adjoins = e.offset === end;
    end = e.offset + e.length;
    if (open && adjoins && b === open.blob) {
      for (const p of pending) open.laid.push({ imageOffset: p.offset, blob: blobOf(p), blobOffset: p.blobOffset ?? 0, length: p.length });
      pending = [];
      open.run.length = end - open.run.imageOffset;
    } else if (open && adjoins && small.has(b)) {
      pending.push(e);
    } else {
      close();
      if (!small.has(b) && stats.get(b)!.shift !== null) open = { blob: b, run: { imageOffset: e.offset, blobOffset: e.blobOffset ?? 0, length: e.length }, laid: [] };
      else addPiece(b, e.offset, e.blobOffset ?? 0, e.length);
    }
  }
  close();

  // Windows: each blob with runs joins the current one if the small blobs its runs need still fit.
  const runsOf = new Map<number, (typeof drafts)[number][]>();
  for (const d of drafts) { const list = runsOf.get(d.blob); if (list) list.push(d); else runsOf.set(d.blob, [d]); }
  const runs = new Map<number, WriteRun[]>();
  const windows: WriteWindow[] = [];
  let window: WriteWindow = { resident: new Map(), blobs: [] };
  let windowBytes = 0;
  let residentBytes = 0;
  const everResident = new Set<number>();
  const placed = new Set<number>();
  for (const [b, list] of runsOf) {
    placed.add(b);
    const needs = new Set(list.flatMap((d) => d.laid.map((l) => l.blob)));
    let bytes = 0;
    for (const s of needs) bytes += stats.get(s)!.needs;
    if (bytes > residentLimit) {
      // More than a window holds (a map no restore of ours would make): every range on its own.
      for (const d of list) {
        let at = d.run.imageOffset;
        for (const l of d.laid) {
          if (l.imageOffset > at) addPiece(b, at, d.run.blobOffset + at - d.run.imageOffset, l.imageOffset - at);
          addPiece(l.blob, l.imageOffset, l.blobOffset, l.length);
          at = l.imageOffset + l.length;
        }
        const runEnd = d.run.imageOffset + d.run.length;
        if (runEnd > at) addPiece(b, at, d.run.blobOffset + at - d.run.imageOffset, runEnd - at);
      }
      window.blobs.push(b);
      continue;
    }
    let added = 0;
    for (const s of needs) if (!window.resident.has(s)) added += stats.get(s)!.needs;
    if (windowBytes + added > residentLimit) {
      windows.push(window);
      window = { resident: new Map(), blobs: [] };
      windowBytes = 0;
    }
    for (const s of needs) {
      if (window.resident.has(s)) continue;
      window.resident.set(s, { offset: windowBytes, bytes: stats.get(s)!.needs });
      windowBytes += stats.get(s)!.needs;
      everResident.add(s);
    }
    residentBytes = Math.max(residentBytes, windowBytes);
    runs.set(b, list.map((d) => ({
      ...d.run,
      overlays: d.laid.map((l) => ({ imageOffset: l.imageOffset, residentOffset: window.resident.get(l.blob)!.offset + l.blobOffset, length: l.length })),
    })));
    window.blobs.push(b);
  }
  // Everything else is read once, in the last window: blobs written range by range, small blobs no run needed.
  for (const b of stats.keys()) if (!placed.has(b) && !everResident.has(b)) window.blobs.push(b);
  windows.push(window);
  const blobBytes = new Map<number, number>();
  for (const [b, s] of stats) blobBytes.set(b, s.needs);
  return { windows, residentBytes, pieces, runs, blobBytes };
}
