/**
 * @module The fleet protocol's one codec: MQTT topics, payload encoding,
 * and the exact bytes a command signature covers. Both the gateway (signs,
 * publishes commands, reads status) and the agent (verifies, reports) use it.
 */
import type protobuf from 'protobufjs';
import { protoRoot as root } from './schema.js';
import type { AgentMessage, Command, CommandActionName, SignedCommand } from './fleet-types.js';


const SignedCommandType = root.lookupType('bulwark.fleet.v1.SignedCommand');
const CommandType = root.lookupType('bulwark.fleet.v1.Command');
const AgentMessageType = root.lookupType('bulwark.fleet.v1.AgentMessage');

const conversion: protobuf.IConversionOptions = { longs: Number, enums: Number, bytes: Buffer, defaults: false, oneofs: false };

/**
 * MQTT 3.1.1 on the wire: the embedded broker (aedes) speaks only 3.1.1, and
 * nothing the fleet uses (QoS 1, retained messages, last will, persistent
 * sessions) needs 5. Mosquitto and EMQX accept both.
 */
export const MQTT_PROTOCOL_VERSION = 4;
/** Largest MQTT payload either side accepts. */
export const MAX_FLEET_PAYLOAD = 256 * 1024;
/** Longest a command may stay valid; agents refuse a later expiry, so their replay cache stays bounded. */
export const MAX_COMMAND_TTL_MS = 24 * 60 * 60 * 1000;
/** CN of the gateway's MQTT client certificate; agents' CNs are their agent ids. */
export const GATEWAY_MQTT_IDENTITY = 'bulwark-gateway';

const SIGNATURE_CONTEXT = Buffer.from('bulwark-fleet-command-v1\0');

export class FleetDecodeError extends Error {}

export function fleetTopics(siteId: string, agentId: string) {
  const base = `bulwark/${siteId}/agents/${agentId}`;
  return { cmd: `${base}/cmd`, status: `${base}/status`, events: `${base}/events` };
}

/** Filters the gateway subscribes to, and how to read the agent id back out of a topic. */
export function fleetSiteFilters(siteId: string) {
  return { status: `bulwark/${siteId}/agents/+/status`, events: `bulwark/${siteId}/agents/+/events` };
}

export function parseFleetTopic(siteId: string, topic: string): { agentId: string; kind: 'cmd' | 'status' | 'events' } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[0] !== 'bulwark' || parts[1] !== siteId || parts[2] !== 'agents') return undefined;
  const kind = parts[4];
  if (kind !== 'cmd' && kind !== 'status' && kind !== 'events') return undefined;
  return { agentId: parts[3], kind };
}

function encode(type: protobuf.Type, value: object): Buffer {
  const bytes = type.encode(type.fromObject(value)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decode<T>(type: protobuf.Type, data: Buffer, what: string): T {
  if (data.length > MAX_FLEET_PAYLOAD) throw new FleetDecodeError(`${what} of ${data.length} bytes exceeds the limit of ${MAX_FLEET_PAYLOAD}`);
  try {
    return type.toObject(type.decode(data), conversion) as T;
  } catch (err) {
    throw new FleetDecodeError(`${what} does not decode: ${(err as Error).message}`);
  }
}

export function encodeCommand(command: Command): Buffer { return encode(CommandType, command); }
export function decodeCommand(data: Buffer): Command { return decode<Command>(CommandType, data, 'command'); }
export function encodeSignedCommand(signed: SignedCommand): Buffer { return encode(SignedCommandType, signed); }
export function decodeSignedCommand(data: Buffer): SignedCommand {
  const signed = decode<SignedCommand>(SignedCommandType, data, 'signed command');
  if (!signed.command?.length || !signed.signature?.length) throw new FleetDecodeError('signed command lacks the command or the signature');
  return signed;
}
export function encodeAgentMessage(message: AgentMessage): Buffer { return encode(AgentMessageType, message); }
export function decodeAgentMessage(data: Buffer): AgentMessage { return decode<AgentMessage>(AgentMessageType, data, 'agent message'); }

/** The bytes the command key signs: a context string, then the encoded command. */
export function commandSigningPayload(commandBytes: Buffer): Buffer {
  return Buffer.concat([SIGNATURE_CONTEXT, commandBytes]);
}

export const COMMAND_ACTIONS: readonly CommandActionName[] = ['backupNow', 'verify', 'restore', 'applyPolicy', 'setSchedule', 'collectDiagnostics', 'update'];

/** Which action a command carries (undefined: none, or more than one). */
export function commandAction(command: Partial<Command>): CommandActionName | undefined {
  const set = COMMAND_ACTIONS.filter((a) => command[a] !== undefined && command[a] !== null);
  return set.length === 1 ? set[0] : undefined;
}

/** Which body an agent message carries. */
export function agentMessageKind(message: AgentMessage): string | undefined {
  return (['presence', 'heartbeat', 'ack', 'rejected', 'progress', 'result', 'alert'] as const).find((k) => message[k] !== undefined);
}
