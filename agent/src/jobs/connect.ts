/**
 * @module Connecting as this agent, with its certificate, to its gateway.
 */
import { sealToRecoveryKey } from '../crypto/keys.js';
import { GatewayLink } from '../transport/link.js';
import type { AgentState } from '../state/state.js';

export async function connectAgent(state: AgentState): Promise<GatewayLink> {
  const { link, hello } = await GatewayLink.connect(state.config.gatewayUrl, { keyPem: state.tls.keyPem, certPem: state.tls.certPem, caPem: state.tls.caPem });
  // Enrollment deposits the key; this covers an enrollment cut short before it could.
  if (hello.needsKeyDeposit) await link.send({ depositKey: { sealedMasterKey: sealToRecoveryKey(state.keys.master, state.recoveryPublicKey) } });
  return link;
}
