/**
 * @module `bulwark-agent run --state S`: the agent service until SIGINT/SIGTERM.
 */
import { parseOptions, UsageError } from '@bulwark/proto';
import { loadState } from '../state/state.js';
import { startAgentService } from './service.js';

export async function runService(args: string[]): Promise<void> {
  const { values } = parseOptions(args, { state: { type: 'string' }, broker: { type: 'string' }, heartbeat: { type: 'string' } });
  if (!values.state) throw new UsageError('--state S is required: the agent\'s state directory');
  const heartbeatMs = values.heartbeat === undefined ? undefined : Number(values.heartbeat) * 1000;
  if (heartbeatMs !== undefined && !(heartbeatMs > 0)) throw new UsageError(`--heartbeat must be a positive number of seconds, not ${values.heartbeat}`);
  const state = loadState(values.state);
  const agent = startAgentService(state, { brokerUrl: values.broker, heartbeatMs });
  console.log(`Agent ${state.config.agentId} running; fleet broker ${values.broker ?? state.config.brokerUrl}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.log(`${signal}: finishing the running job, then stopping`);
      agent.stop().then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
