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
  release(): void;
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

const SNAP_MARK = '.bulwark-snap-';

/** Remove reflink snapshots left by agents that died (kill -9) before releasing them. */
function removeStaleSnapshots(image: string): void {
  const dir = path.dirname(image);
  const prefix = `.${path.basename(image)}${SNAP_MARK}`;
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return; }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    let alive = false;
    try { process.kill(pid, 0); alive = pid !== process.pid; } catch { alive = false; }
    if (!alive) fs.rmSync(path.join(dir, name), { force: true });
  }
}

function reflinkSnapshot(source: VolumeSource): PointInTime {
  removeStaleSnapshots(source.path);
  const snap = path.join(path.dirname(source.path), `.${path.basename(source.path)}${SNAP_MARK}${process.pid}`);
  try {
    fs.copyFileSync(source.path, snap, fs.constants.COPYFILE_FICLONE_FORCE);
  } catch (err) {
    fs.rmSync(snap, { force: true });
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { readPath: source.path, method: 'none', crashConsistent: false, note: `no point-in-time copy: this filesystem cannot reflink ${source.path} (${code}); read live, so the point is crash-inconsistent`, release() {} };
  }
  return { readPath: snap, method: 'reflink', crashConsistent: true, release: () => fs.rmSync(snap, { force: true }) };
}

/**
 * LVM: `lvs` names the volume group and logical volume behind the device; a
 * copy-on-write snapshot sized at 10% of the origin (at least 1 GiB) is read
 * and removed afterwards. Written to the design, not tested here (no LVM on
 * the build machines).
 */
function lvmSnapshot(source: VolumeSource): PointInTime | undefined {
  let vg: string, lv: string;
  try {
    const out = execFileSync('lvs', ['--noheadings', '-o', 'vg_name,lv_name', source.path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(/\s+/);
    if (out.length !== 2) return undefined;
    [vg, lv] = out;
  } catch {
    return undefined;
  }
  const name = `${lv}-bulwark-snap-${process.pid}`;
  const size = Math.max(1 << 30, Math.ceil(source.sizeBytes / 10 / 512) * 512);
  try {
    execFileSync('lvcreate', ['--snapshot', '--name', name, '--size', `${size}b`, `${vg}/${lv}`], { stdio: 'ignore' });
  } catch (err) {
    return { readPath: source.path, method: 'none', crashConsistent: false, note: `LVM snapshot of ${vg}/${lv} failed (${(err as Error).message}); read live, so the point is crash-inconsistent`, release() {} };
  }
  return {
    readPath: `/dev/${vg}/${name}`, method: 'lvm', crashConsistent: true,
    release: () => { try { execFileSync('lvremove', ['--force', `${vg}/${name}`], { stdio: 'ignore' }); } catch { /* reported by the next run's lvs */ } },
  };
}

export function pointInTime(source: VolumeSource): PointInTime {
  if (!source.blockDevice) return reflinkSnapshot(source);
  return lvmSnapshot(source) ?? {
    readPath: source.path, method: 'none', crashConsistent: false,
    note: `no point-in-time copy: ${source.path} is not an LVM logical volume; read live, so the point is crash-inconsistent`, release() {},
  };
}
