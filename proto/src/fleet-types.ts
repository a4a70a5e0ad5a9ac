/**
 * @module TypeScript shapes of the messages in fleet.proto (camelCase field
 * names, bytes as Buffer, 64-bit integers as number). Keep in step with it.
 */

export interface SignedCommand { command: Buffer; signature: Buffer }

export interface BackupNow { paths?: string[]; policyId?: string; runId?: string }
export interface VerifyPoint { point?: string }
export interface RestorePoint { point: string; target: string; sparse?: boolean }
export interface Policy { policyId: string; paths: string[] }
export interface ApplyPolicy { policy: Policy }
export interface SetSchedule { policyId: string; periodMs: number; jitterMs?: number }
export type CollectDiagnostics = Record<string, never>;
export interface UpdateAgent { version: string; url?: string; sha256?: Buffer }

/** Exactly one action member is set. */
export interface CommandAction {
  backupNow?: BackupNow; verify?: VerifyPoint; restore?: RestorePoint; applyPolicy?: ApplyPolicy;
  setSchedule?: SetSchedule; collectDiagnostics?: CollectDiagnostics; update?: UpdateAgent;
}
export type CommandActionName = keyof CommandAction;

export interface Command extends CommandAction {
  commandId: string; siteId: string; agentId: string; nonce: Buffer; issuedUnixMs: number; expiresUnixMs: number;
}

export interface Presence { online?: boolean }
export interface Volume { mount: string; fs?: string; sizeBytes: number; usedBytes?: number }
export interface Inventory {
  hostname: string; os: string; osRelease?: string; arch: string; cpu: string; cores: number; memoryBytes: number;
  volumes?: Volume[]; agentVersion: string;
}
export interface Heartbeat { seq: number; agentVersion: string; uptimeMs: number; runningCommandId?: string; inventory?: Inventory }
export interface CommandAck { commandId: string; action: string }

export enum RejectReason {
  REJECT_UNSPECIFIED = 0,
  BAD_SIGNATURE = 1,
  REPLAY = 2,
  EXPIRED = 3,
  WRONG_AGENT = 4,
  WRONG_SITE = 5,
  MALFORMED = 6,
  UNSUPPORTED = 7,
}

export interface CommandRejected { commandId?: string; reason: RejectReason; detail?: string }
export interface JobProgress { commandId: string; action: string; fraction?: number; message?: string }
export interface JobResult { commandId: string; action: string; ok?: boolean; message?: string; point?: string; detailJson?: string; runId?: string }
export interface Alert { severity: string; message: string }

export interface AgentMessageBody {
  presence?: Presence; heartbeat?: Heartbeat; ack?: CommandAck; rejected?: CommandRejected;
  progress?: JobProgress; result?: JobResult; alert?: Alert;
}
/** Exactly one body member is set. */
export interface AgentMessage extends AgentMessageBody { agentId: string; sentUnixMs: number }
