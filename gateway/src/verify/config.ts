/**
 * @module The `verify` section of site.json: when the gateway verifies on
 * its own. One schema with safe defaults; a bad key is named in the error.
 */
export interface VerifySchedule {
  /** Metadata-verify the packs and refs of each point right after it is committed. */
  afterBackup: boolean;
  /** Metadata verify of the whole store every N hours (0: never). */
  metadataEveryHours: number;
  /** Full verify (re-hash every pack) every N hours (0: never). */
  fullEveryHours: number;
  /** Read budget of a scheduled full verify, MiB/s (0: unthrottled), so ingest keeps its speed. */
  fullMaxMiBps: number;
}

export const DEFAULT_VERIFY: VerifySchedule = { afterBackup: true, metadataEveryHours: 24, fullEveryHours: 168, fullMaxMiBps: 200 };

export class ConfigError extends Error {}

export function parseVerifySchedule(raw: unknown): VerifySchedule {
  if (raw === undefined) return { ...DEFAULT_VERIFY };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('site.json: "verify" must be an object');
  const out: VerifySchedule = { ...DEFAULT_VERIFY };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key === 'afterBackup') {
      if (typeof value !== 'boolean') throw new ConfigError(`site.json: verify.afterBackup must be true or false, not ${JSON.stringify(value)}`);
      out.afterBackup = value;
    } else if (key === 'metadataEveryHours' || key === 'fullEveryHours' || key === 'fullMaxMiBps') {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new ConfigError(`site.json: verify.${key} must be a number ≥ 0, not ${JSON.stringify(value)}`);
      out[key] = value;
    } else {
      throw new ConfigError(`site.json: unknown key verify.${key} (known: ${Object.keys(DEFAULT_VERIFY).join(', ')})`);
    }
  }
  return out;
}
