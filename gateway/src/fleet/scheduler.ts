/**
 * @module The gateway's backup scheduler. A policy has a period, a jitter and
 * an anchor; slot k of an agent falls due at anchor + k·period + that agent's
 * jitter for k (a stable hash, so restarts do not move it). Each tick claims,
 * in one SQLite transaction with the command, the latest slot that is due and
 * later than the last one claimed: missed slots (gateway down) collapse into
 * one catch-up run, and no slot runs twice. A failed run is retried with
 * exponential back-off, as a new command for the same slot.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CommandAction } from '@bulwark/proto';
import type { FleetStore, PolicyRow, RunRow } from './fleet-store.js';
import type { SignedFleetCommand } from './commands.js';
import type { Log } from '../log/log.js';

export interface Clock { now(): number }
export const systemClock: Clock = { now: () => Date.now() };

export interface RetryPolicy { baseMs: number; maxAttempts: number; capMs: number }
export const DEFAULT_RETRY: RetryPolicy = { baseMs: 30_000, maxAttempts: 4, capMs: 30 * 60_000 };

type Schedule = Pick<PolicyRow, 'id' | 'period_ms' | 'jitter_ms' | 'anchor_ms'>;

/** Jitter is at most half a period, so slots never swap order. */
export function jitterFor(schedule: Schedule, agentId: string, slot: number): number {
  const max = Math.min(schedule.jitter_ms, Math.floor(schedule.period_ms / 2));
  if (max <= 0) return 0;
  const h = createHash('sha256').update(`${schedule.id}\0${agentId}\0${slot}`).digest();
  return h.readUInt32BE(0) % (max + 1);
}

export function slotDueMs(schedule: Schedule, agentId: string, slot: number): number {
  return schedule.anchor_ms + slot * schedule.period_ms + jitterFor(schedule, agentId, slot);
}

/** The latest slot due at `nowMs` (0 = the anchor itself, which never runs). */
export function latestDueSlot(schedule: Schedule, agentId: string, nowMs: number): number {
  if (nowMs <= schedule.anchor_ms) return 0;
  const k = Math.floor((nowMs - schedule.anchor_ms) / schedule.period_ms);
  return slotDueMs(schedule, agentId, k) <= nowMs ? k : Math.max(0, k - 1);
}

export function backoffMs(retry: RetryPolicy, attempt: number): number {
  return Math.min(retry.capMs, retry.baseMs * 2 ** Math.max(0, attempt - 1));
}

export type CommandSigner = (agentId: string, action: CommandAction, ttlMs: number) => SignedFleetCommand;

export class Scheduler {
  constructor(
    private readonly store: FleetStore,
    private readonly sign: CommandSigner,
    private readonly clock: Clock,
    private readonly log: Log,
    private readonly onQueued: () => void,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  private static ttl(period: number): number { return Math.min(24 * 3600_000, Math.max(60_000, period)); }

  private backupAction(policy: PolicyRow, runId: string): CommandAction {
    return { backupNow: { paths: JSON.parse(policy.paths) as string[], policyId: policy.id, runId } };
  }

  async tick(): Promise<void> {
    const now = this.clock.now();
    const policies = new Map((await this.store.listPolicies()).map((p) => [p.id, p]));
    let queued = false;
    for (const a of await this.store.listAssignments()) {
      const policy = policies.get(a.policy_id);
      if (!policy) continue;
      const slot = latestDueSlot(policy, a.agent_id, now);
      if (slot <= a.last_slot) continue;
      const runId = `run-${randomBytes(8).toString('hex')}`;
      const signed = this.sign(a.agent_id, this.backupAction(policy, runId), Scheduler.ttl(policy.period_ms));
      const due = slotDueMs(policy, a.agent_id, slot);
      const claimed = await this.store.claimSlot(
        { id: runId, policy_id: policy.id, agent_id: a.agent_id, slot, attempt: 1, command_id: signed.command.commandId, due_ms: due, started_ms: now },
        this.commandRow(signed, a.agent_id, now, runId),
      );
      if (!claimed) continue;
      queued = true;
      const missed = slot - a.last_slot - 1;
      this.log.info(`scheduler: ${policy.id} on ${a.agent_id}: slot ${slot} due ${new Date(due).toISOString()}${missed > 0 ? ` (catching up: ${missed} missed slot(s) run once)` : ''}; command ${signed.command.commandId}`);
    }
    for (const failed of await this.store.retriesDue(now)) {
      const policy = policies.get(failed.policy_id);
      if (!policy) continue;
      const runId = `run-${randomBytes(8).toString('hex')}`;
      const signed = this.sign(failed.agent_id, this.backupAction(policy, runId), Scheduler.ttl(policy.period_ms));
      const attempt = failed.attempt + 1;
      if (await this.store.retryRun(failed.id, { id: runId, policy_id: failed.policy_id, agent_id: failed.agent_id, slot: failed.slot, attempt, command_id: signed.command.commandId, due_ms: failed.due_ms, started_ms: now }, this.commandRow(signed, failed.agent_id, now, runId))) {
        queued = true;
        this.log.info(`scheduler: retrying ${failed.policy_id} on ${failed.agent_id} slot ${failed.slot} (attempt ${attempt}); command ${signed.command.commandId}`);
      }
    }
    if (queued) this.onQueued();
  }

  private commandRow(signed: SignedFleetCommand, agentId: string, now: number, runId: string) {
    return { id: signed.command.commandId, agent_id: agentId, action: signed.action, payload: signed.payload, created_ms: now, expires_ms: signed.command.expiresUnixMs, run_id: runId };
  }

  /** A scheduled command finished (or expired): record it, and plan a retry if it failed. */
  async finished(commandId: string, ok: boolean, message: string): Promise<RunRow | undefined> {
    const run = await this.store.runByCommand(commandId);
    if (!run) return undefined;
    const now = this.clock.now();
    const retryAt = ok || run.attempt >= this.retry.maxAttempts ? null : now + backoffMs(this.retry, run.attempt);
    if (await this.store.finishRun(run.id, ok, now, message, retryAt)) {
      if (!ok) this.log.warn(`scheduler: ${run.policy_id} on ${run.agent_id} slot ${run.slot} failed (attempt ${run.attempt}): ${message}${retryAt ? `; retry at ${new Date(retryAt).toISOString()}` : '; no retries left'}`);
    }
    return run;
  }
}
