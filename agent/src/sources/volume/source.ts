/**
 * @module The volume source: what is being backed up (an image file or a
 * block device), its size and device numbers, and a point-in-time view of
 * it. Image files get a reflink copy where the filesystem can make one
 * (btrfs, XFS, …); LVM logical volumes get an LVM snapshot; anything else
 * is read live and its point is marked crash-inconsistent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { formatBytes } from '@bulwark/proto';

export interface VolumeSource {
  path: string;
  sizeBytes: number;
  blockDevice: boolean;
  deviceMajor: number;
  deviceMinor: number;
}

export interface PointInTime {
  /** Where to read from (the snapshot, or the live volume). */
  readPath: string;
  method: 'reflink' | 'lvm' | 'none';
  crashConsistent: boolean;
  /** Why no snapshot was possible, for the output. */
  note?: string;
  /** A read of the view failed: the error to report (one that says why, when the view knows). */
  explain(err: unknown): unknown;
  release(): void;
}

const asIs = (err: unknown): unknown => err;

function readLive(source: VolumeSource, why: string): PointInTime {
  return { readPath: source.path, method: 'none', crashConsistent: false, note: `${why}; read live, so the point is crash-inconsistent`, explain: asIs, release() {} };
}

export class VolumeSourceError extends Error {}

function splitDev(rdev: number): { major: number; minor: number } {
  // glibc's gnu_dev_major/minor.
  const hi = Math.floor(rdev / 2 ** 32);
  const lo = rdev >>> 0;
  return { major: ((lo >>> 8) & 0xfff) | (hi & ~0xfff), minor: (lo & 0xff) | ((lo >>> 12) & ~0xff) };
}

export function openVolumeSource(given: string): VolumeSource {
  const p = path.resolve(given);
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (err) {
    throw new VolumeSourceError(`cannot back up volume ${p}: ${(err as Error).message}`);
  }
  if (st.isFile()) return { path: p, sizeBytes: st.size, blockDevice: false, deviceMajor: 0, deviceMinor: 0 };
  if (!st.isBlockDevice()) throw new VolumeSourceError(`${p} is neither a block device nor an image file`);
  const { major, minor } = splitDev(st.rdev);
  const sizeFile = `/sys/dev/block/${major}:${minor}/size`;
  let sectors: number;
  try {
    sectors = Number(fs.readFileSync(sizeFile, 'utf8').trim());
  } catch (err) {
    throw new VolumeSourceError(`cannot read the size of ${p} from ${sizeFile}: ${(err as Error).message}`);
  }
  return { path: p, sizeBytes: sectors * 512, blockDevice: true, deviceMajor: major, deviceMinor: minor };
}

/** Names our snapshots, so that one left by a killed agent (its pid follows) is recognised. */
const SNAP_TAG = 'bulwark-snap-';

/** A snapshot tagged with this pid was left by an agent that died (kill -9) before releasing it. */
function leftByDeadAgent(pid: number): boolean {
  if (pid === process.pid) return true; // ours are made after this check: a namesake is from a former holder of the pid
  try { process.kill(pid, 0); return false; } catch (err) { return (err as NodeJS.ErrnoException).code !== 'EPERM'; }
}

function removeStaleSnapshots(image: string): void {
  const dir = path.dirname(image);
  const prefix = `.${path.basename(image)}.${SNAP_TAG}`;
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return; }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    if (leftByDeadAgent(Number(name.slice(prefix.length)))) fs.rmSync(path.join(dir, name), { force: true });
  }
}

function reflinkSnapshot(source: VolumeSource): PointInTime {
  removeStaleSnapshots(source.path);
  const snap = path.join(path.dirname(source.path), `.${path.basename(source.path)}.${SNAP_TAG}${process.pid}`);
  try {
    fs.copyFileSync(source.path, snap, fs.constants.COPYFILE_FICLONE_FORCE);
  } catch (err) {
    fs.rmSync(snap, { force: true });
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return readLive(source, `no point-in-time copy: this filesystem cannot reflink ${source.path} (${code})`);
  }
  return { readPath: snap, method: 'reflink', crashConsistent: true, explain: asIs, release: () => fs.rmSync(snap, { force: true }) };
}

const MiB = 1024 * 1024;

/** Runs one LVM command; its fd-leak warnings (Node's open descriptors) are noise. */
function lvm(args: string[]): string {
  return execFileSync('lvm', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' } });
}

function lvmFailure(err: unknown): string {
  const stderr = (err as { stderr?: string }).stderr?.trim();
  return stderr ? stderr.split('\n').pop()! : (err as Error).message;
}

/** The device-mapper name of an LV: each dash doubled, VG and LV joined by one. */
function mapperPath(vg: string, lv: string): string {
  return `/dev/mapper/${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

/** Left-over snapshots would fill the volume group (and slow every write to the origin). */
function removeStaleLvmSnapshots(vg: string, lv: string): void {
  const prefix = `${lv}-${SNAP_TAG}`;
  for (const line of lvm(['lvs', '--noheadings', '-o', 'lv_name,origin', vg]).split('\n')) {
    const [name, origin] = line.trim().split(/\s+/);
    if (origin !== lv || !name?.startsWith(prefix) || !leftByDeadAgent(Number(name.slice(prefix.length)))) continue;
    try { lvm(['lvremove', '--force', `${vg}/${name}`]); } catch { /* tried again next run */ }
  }
}

/**
 * LVM: `lvs` names the volume group and logical volume behind the device; a
 * copy-on-write snapshot is read and removed afterwards. Its size is 10% of
 * the origin, at least 1 GiB, but never more than a full copy of the origin
 * needs nor more than the group has free. If writes to the origin outgrow
 * it during the backup, the kernel invalidates it and its reads fail: the
 * backup fails rather than commit a torn point.
 */
function lvmSnapshot(source: VolumeSource): PointInTime | undefined {
  let vg: string, lv: string;
  try {
    const fields = lvm(['lvs', '--noheadings', '-o', 'vg_name,lv_name', source.path]).trim().split(/\s+/);
    if (fields.length !== 2) return undefined;
    [vg, lv] = fields;
  } catch {
    return undefined;
  }
  const name = `${lv}-${SNAP_TAG}${process.pid}`;
  const live = (why: string) => readLive(source, `no LVM snapshot of ${vg}/${lv} (${why})`);
  let size: number;
  try {
    removeStaleLvmSnapshots(vg, lv);
    const free = Number(lvm(['vgs', '--noheadings', '--nosuffix', '--units', 'b', '-o', 'vg_free', vg]).trim());
    const fullCopy = source.sizeBytes + Math.ceil(source.sizeBytes / 64) + 4 * MiB; // data plus its exception table
    size = Math.floor(Math.min(free, fullCopy, Math.max(1024 * MiB, source.sizeBytes / 10)) / 512) * 512;
    if (size < 4 * MiB) return live(`volume group ${vg} has ${free} bytes free`);
    lvm(['lvcreate', '--snapshot', '--name', name, '--size', `${size}b`, `${vg}/${lv}`]);
  } catch (err) {
    return live(lvmFailure(err));
  }
  return {
    readPath: mapperPath(vg, name), method: 'lvm', crashConsistent: true,
    explain(err) {
      let attr = '';
      try { attr = lvm(['lvs', '--noheadings', '-o', 'lv_attr', `${vg}/${name}`]).trim(); } catch { return err; }
      // The fifth attribute is the state: I (or S, suspended) = an invalid snapshot, it ran out of space.
      if (attr[4] !== 'I' && attr[4] !== 'S') return err;
      return new VolumeSourceError(`the LVM snapshot ${vg}/${name} overflowed: writes to ${vg}/${lv} during the backup outgrew its ${formatBytes(size)}, so it no longer holds the volume as it was. Nothing was committed. Free space in ${vg} (a snapshot takes up to 10% of the volume, at least 1 GiB) or back up when the volume is quieter.`);
    },
    release: () => { try { lvm(['lvremove', '--force', `${vg}/${name}`]); } catch { /* removed by the next run */ } },
  };
}

export function pointInTime(source: VolumeSource): PointInTime {
  if (!source.blockDevice) return reflinkSnapshot(source);
  return lvmSnapshot(source) ?? readLive(source, `no point-in-time copy: ${source.path} is not an LVM logical volume`);
}
