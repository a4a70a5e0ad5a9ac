/**
 * @module The fleet's tables in the catalog database (catalog.db): what each
 * agent last reported, the command outbox, policies, their assignment to
 * agents with the last schedule slot handled, and scheduled runs. Kept apart
 * from catalog.ts's schema; created with CREATE TABLE IF NOT EXISTS.
 */
import type { Db } from '../catalog/sqlite.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS fleet_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_agents (
  agent_id TEXT PRIMARY KEY,
  online INTEGER NOT NULL DEFAULT 0,
  last_seen_ms INTEGER,
  agent_version TEXT,
  inventory TEXT,
  running_command TEXT,
  last_backup_ms INTEGER,
  last_backup_ok INTEGER,
  last_backup_message TEXT,
  last_backup_point TEXT,
  last_rejection TEXT,
  last_rejection_ms INTEGER,
  last_alert TEXT,
  last_alert_ms INTEGER
);
CREATE TABLE IF NOT EXISTS fleet_commands (
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  action TEXT NOT NULL,
  payload BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  last_sent_ms INTEGER,
  state TEXT NOT NULL,
  message TEXT,
  result TEXT,
  run_id TEXT,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS fleet_commands_open ON fleet_commands(state, expires_ms);
CREATE TABLE IF NOT EXISTS fleet_policies (
  id TEXT PRIMARY KEY,
  paths TEXT NOT NULL,
  period_ms INTEGER NOT NULL,
  jitter_ms INTEGER NOT NULL,
  anchor_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_assignments (
  policy_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  last_slot INTEGER NOT NULL,
  PRIMARY KEY (policy_id, agent_id)
);
CREATE TABLE IF NOT EXISTS fleet_runs (
  id TEXT PRIMARY KEY,
  policy_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  slot INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  command_id TEXT NOT NULL,
  state TEXT NOT NULL,
  due_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  finished_ms INTEGER,
  next_retry_ms INTEGER,
  message TEXT
);
CREATE INDEX IF NOT EXISTS fleet_runs_by_agent ON fleet_runs(policy_id, agent_id, slot);
`;

/** pending: not yet acknowledged; accepted: the agent has it; then done | failed | rejected | expired. */
export type CommandState = 'pending' | 'accepted' | 'done' | 'failed' | 'rejected' | 'expired';
export const OPEN_COMMAND_STATES: CommandState[] = ['pending', 'accepted'];

export interface FleetAgentRow {
  agent_id: string; online: number; last_seen_ms: number | null; agent_version: string | null; inventory: string | null;
  running_command: string | null; last_backup_ms: number | null; last_backup_ok: number | null; last_backup_message: string | null;
  last_backup_point: string | null; last_rejection: string | null; last_rejection_ms: number | null;
  last_alert: string | null; last_alert_ms: number | null;
}
export interface CommandRow {
  id: string; agent_id: string; action: string; payload: Buffer; created_ms: number; expires_ms: number; last_sent_ms: number | null;
  state: CommandState; message: string | null; result: string | null; run_id: string | null; updated_ms: number;
}
export interface PolicyRow { id: string; paths: string; period_ms: number; jitter_ms: number; anchor_ms: number; updated_ms: number }
export interface AssignmentRow { policy_id: string; agent_id: string; last_slot: number }
export interface RunRow {
  id: string; policy_id: string; agent_id: string; slot: number; attempt: number; command_id: string; state: 'sent' | 'ok' | 'failed';
  due_ms: number; started_ms: number; finished_ms: number | null; next_retry_ms: number | null; message: string | null;
}

/** What one status message changes for an agent; undefined fields stay as they are. */
export interface PresenceUpdate { agentId: string; online?: boolean; seenMs?: number; agentVersion?: string; inventory?: string; runningCommand?: string | null }

export class FleetStore {
  private constructor(readonly db: Db) {}

  static async open(db: Db): Promise<FleetStore> {
    await db.exec(SCHEMA);
    return new FleetStore(db);
  }

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.db.get<{ value: string }>('SELECT value FROM fleet_meta WHERE key = ?', [key]))?.value;
  }
  setMeta(key: string, value: string): Promise<void> {
    return this.db.transaction(async () => { await this.db.run('INSERT OR REPLACE INTO fleet_meta(key, value) VALUES (?, ?)', [key, value]); });
  }

  // ---- presence, inventory, last results

  /** Many agents' status in one transaction (heartbeats arrive in bursts). */
  applyPresence(updates: PresenceUpdate[]): Promise<void> {
    if (updates.length === 0) return Promise.resolve();
    return this.db.transaction(async () => {
      for (const u of updates) {
        await this.db.run('INSERT OR IGNORE INTO fleet_agents(agent_id) VALUES (?)', [u.agentId]);
        await this.db.run(
          `UPDATE fleet_agents SET online = COALESCE(?, online), last_seen_ms = MAX(COALESCE(last_seen_ms, 0), COALESCE(?, 0)),
             agent_version = COALESCE(?, agent_version), inventory = COALESCE(?, inventory),
             running_command = CASE WHEN ? THEN ? ELSE running_command END WHERE agent_id = ?`,
          [u.online === undefined ? null : Number(u.online), u.seenMs ?? null, u.agentVersion ?? null, u.inventory ?? null,
            u.runningCommand !== undefined ? 1 : 0, u.runningCommand ?? null, u.agentId],
        );
      }
    });
  }

  recordBackup(agentId: string, ms: number, ok: boolean, message: string, point: string | null): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.run('INSERT OR IGNORE INTO fleet_agents(agent_id) VALUES (?)', [agentId]);
      await this.db.run('UPDATE fleet_agents SET last_backup_ms = ?, last_backup_ok = ?, last_backup_message = ?, last_backup_point = ? WHERE agent_id = ?', [ms, Number(ok), message, point, agentId]);
    });
  }

  recordRejection(agentId: string, ms: number, text: string): Promise<void> { return this.recordNote(agentId, 'last_rejection', ms, text); }
  recordAlert(agentId: string, ms: number, text: string): Promise<void> { return this.recordNote(agentId, 'last_alert', ms, text); }

  private recordNote(agentId: string, column: 'last_rejection' | 'last_alert', ms: number, text: string): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.run('INSERT OR IGNORE INTO fleet_agents(agent_id) VALUES (?)', [agentId]);
      await this.db.run(`UPDATE fleet_agents SET ${column} = ?, ${column}_ms = ? WHERE agent_id = ?`, [text, ms, agentId]);
    });
  }

  listAgents(): Promise<FleetAgentRow[]> { return this.db.all<FleetAgentRow>('SELECT * FROM fleet_agents'); }

  // ---- command outbox

  insertCommand(row: Pick<CommandRow, 'id' | 'agent_id' | 'action' | 'payload' | 'created_ms' | 'expires_ms' | 'run_id'> & { last_sent_ms?: number | null }): Promise<void> {
    return this.db.transaction(() => this.insertCommandRaw(row));
  }

  private async insertCommandRaw(row: Pick<CommandRow, 'id' | 'agent_id' | 'action' | 'payload' | 'created_ms' | 'expires_ms' | 'run_id'> & { last_sent_ms?: number | null }): Promise<void> {
    await this.db.run(
      'INSERT INTO fleet_commands(id, agent_id, action, payload, created_ms, expires_ms, last_sent_ms, state, run_id, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [row.id, row.agent_id, row.action, row.payload, row.created_ms, row.expires_ms, row.last_sent_ms ?? null, 'pending', row.run_id, row.created_ms],
    );
  }

  getCommand(id: string): Promise<CommandRow | undefined> { return this.db.get<CommandRow>('SELECT * FROM fleet_commands WHERE id = ?', [id]); }

  /** Move a command on, only from one of `from` (so a late ack never reopens a finished command). */
  async moveCommand(id: string, from: CommandState[], to: CommandState, nowMs: number, fields: { message?: string; result?: string } = {}): Promise<boolean> {
    return this.db.transaction(async () => (await this.db.run(
      `UPDATE fleet_commands SET state = ?, updated_ms = ?, message = COALESCE(?, message), result = COALESCE(?, result) WHERE id = ? AND state IN (${from.map(() => '?').join(',')})`,
      [to, nowMs, fields.message ?? null, fields.result ?? null, id, ...from],
    )).changes === 1);
  }

  /** Unacknowledged commands to (re)publish: not sent since `resendBeforeMs`. */
  commandsToSend(nowMs: number, resendBeforeMs: number): Promise<CommandRow[]> {
    return this.db.all<CommandRow>("SELECT * FROM fleet_commands WHERE state = 'pending' AND expires_ms > ? AND (last_sent_ms IS NULL OR last_sent_ms <= ?) ORDER BY created_ms", [nowMs, resendBeforeMs]);
  }

  markSent(ids: string[], nowMs: number): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return this.db.transaction(async () => {
      for (const id of ids) await this.db.run('UPDATE fleet_commands SET last_sent_ms = ? WHERE id = ?', [nowMs, id]);
    });
  }

  /** Open commands past their expiry: they can never run now. */
  async expireCommands(nowMs: number): Promise<CommandRow[]> {
    const rows = await this.db.all<CommandRow>("SELECT * FROM fleet_commands WHERE state IN ('pending', 'accepted') AND expires_ms <= ?", [nowMs]);
    const expired: CommandRow[] = [];
    for (const row of rows) if (await this.moveCommand(row.id, OPEN_COMMAND_STATES, 'expired', nowMs, { message: 'expired before the agent reported a result' })) expired.push(row);
    return expired;
  }

  // ---- policies and schedules

  upsertPolicy(row: PolicyRow): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.run('INSERT OR REPLACE INTO fleet_policies(id, paths, period_ms, jitter_ms, anchor_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?)', [row.id, row.paths, row.period_ms, row.jitter_ms, row.anchor_ms, row.updated_ms]);
    });
  }
  getPolicy(id: string): Promise<PolicyRow | undefined> { return this.db.get<PolicyRow>('SELECT * FROM fleet_policies WHERE id = ?', [id]); }
  listPolicies(): Promise<PolicyRow[]> { return this.db.all<PolicyRow>('SELECT * FROM fleet_policies ORDER BY id'); }

  /** Assign (or re-assign) a policy; slots up to `lastSlot` count as handled. */
  assign(policyId: string, agentId: string, lastSlot: number): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.run('INSERT OR REPLACE INTO fleet_assignments(policy_id, agent_id, last_slot) VALUES (?, ?, ?)', [policyId, agentId, lastSlot]);
    });
  }
  listAssignments(): Promise<AssignmentRow[]> { return this.db.all<AssignmentRow>('SELECT * FROM fleet_assignments ORDER BY policy_id, agent_id'); }

  /**
   * Claim slot `slot` for a run, atomically with its command: only if no later
   * or equal slot was claimed before. This is what makes a run happen once
   * even across gateway restarts.
   */
  claimSlot(run: Omit<RunRow, 'finished_ms' | 'next_retry_ms' | 'message' | 'state'>, command: Parameters<FleetStore['insertCommand']>[0]): Promise<boolean> {
    return this.db.transaction(async () => {
      const claimed = await this.db.run('UPDATE fleet_assignments SET last_slot = ? WHERE policy_id = ? AND agent_id = ? AND last_slot < ?', [run.slot, run.policy_id, run.agent_id, run.slot]);
      if (claimed.changes !== 1) return false;
      await this.insertRunRaw(run);
      await this.insertCommandRaw(command);
      return true;
    });
  }

  /** A retry of a failed run: a new run row and command, once per failed row. */
  retryRun(failedId: string, run: Omit<RunRow, 'finished_ms' | 'next_retry_ms' | 'message' | 'state'>, command: Parameters<FleetStore['insertCommand']>[0]): Promise<boolean> {
    return this.db.transaction(async () => {
      const taken = await this.db.run("UPDATE fleet_runs SET next_retry_ms = NULL WHERE id = ? AND state = 'failed' AND next_retry_ms IS NOT NULL", [failedId]);
      if (taken.changes !== 1) return false;
      await this.insertRunRaw(run);
      await this.insertCommandRaw(command);
      return true;
    });
  }

  private async insertRunRaw(run: Omit<RunRow, 'finished_ms' | 'next_retry_ms' | 'message' | 'state'>): Promise<void> {
    await this.db.run(
      "INSERT INTO fleet_runs(id, policy_id, agent_id, slot, attempt, command_id, state, due_ms, started_ms) VALUES (?, ?, ?, ?, ?, ?, 'sent', ?, ?)",
      [run.id, run.policy_id, run.agent_id, run.slot, run.attempt, run.command_id, run.due_ms, run.started_ms],
    );
  }

  finishRun(id: string, ok: boolean, nowMs: number, message: string, nextRetryMs: number | null): Promise<boolean> {
    return this.db.transaction(async () => (await this.db.run(
      "UPDATE fleet_runs SET state = ?, finished_ms = ?, message = ?, next_retry_ms = ? WHERE id = ? AND state = 'sent'",
      [ok ? 'ok' : 'failed', nowMs, message, nextRetryMs, id],
    )).changes === 1);
  }

  getRun(id: string): Promise<RunRow | undefined> { return this.db.get<RunRow>('SELECT * FROM fleet_runs WHERE id = ?', [id]); }
  runByCommand(commandId: string): Promise<RunRow | undefined> { return this.db.get<RunRow>('SELECT * FROM fleet_runs WHERE command_id = ?', [commandId]); }
  retriesDue(nowMs: number): Promise<RunRow[]> {
    return this.db.all<RunRow>("SELECT * FROM fleet_runs WHERE state = 'failed' AND next_retry_ms IS NOT NULL AND next_retry_ms <= ?", [nowMs]);
  }
  listRuns(): Promise<RunRow[]> { return this.db.all<RunRow>('SELECT * FROM fleet_runs ORDER BY started_ms'); }
}
