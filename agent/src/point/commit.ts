/**
 * @module Turning an uploaded set of blobs into a restore point: the
 * manifest blob, the sorted reference list and its Merkle root, the signed
 * header, and the commit the gateway countersigns. Shared by every source.
 */
import { randomBytes } from 'node:crypto';
import { canonicalRefs, encodeManifest, encodePointHeader, merkleRoot, type Manifest, type PointHeader } from '@bulwark/proto';
import { blobId, sealBlob } from '../crypto/envelope.js';
import { signDetached } from '../crypto/keys.js';
import type { AgentState, StagedFile } from '../state/state.js';
import type { Uploader } from '../upload/uploader.js';

export interface PointDraft {
  kind: PointHeader['kind'];
  manifest: Manifest;
  /** The manifest's volume map, already encoded (it stands for `manifest.volume`). */
  encodedVolume?: Buffer;
  /** Every blob the point references, as hex ids (duplicates allowed). */
  refs: Iterable<string>;
  logicalBytes: number;
  previousPointId?: Buffer;
  provider: string;
  crashConsistent: boolean;
  /**
   * What the agent keeps about the point (files cache, volume state): staged
   * while the gateway makes the commit durable, whose fsyncs leave this
   * thread idle, and put in place only once the commit is confirmed.
   */
  remember?: (pointId: Buffer) => StagedFile;
}

export interface CommittedPoint { pointId: Buffer; header: PointHeader; blobCount: number }

export class MissingBlobsError extends Error {}

async function isOurs(uploader: Uploader, pointId: Buffer, agentSignature: Buffer): Promise<boolean> {
  const stored = await uploader.request(() => ({ getPoint: { requestId: 0, pointId } }), 'pointData');
  return stored.pointData!.summary.agentSignature.equals(agentSignature);
}

export async function commitPoint(state: AgentState, uploader: Uploader, draft: PointDraft): Promise<CommittedPoint> {
  const manifestPlain = encodeManifest(draft.manifest, draft.encodedVolume);
  const manifestId = blobId(state.keys.blobId, manifestPlain);
  await uploader.add([{ id: manifestId, envelope: sealBlob(state.keys.data, manifestId, manifestPlain) }]);
  // The header is built and signed while the gateway seals the last packs (10–15 ms for a few thousand refs): nothing in it waits for them.
  const finished = uploader.finish();
  finished.catch(() => undefined);
  const refs = canonicalRefs([...draft.refs, manifestId.toString('hex')]);
  const header: PointHeader = {
    pointId: randomBytes(16), agentId: state.config.agentId, createdUnixMs: Date.now(), kind: draft.kind,
    manifestBlobId: manifestId, merkleRoot: merkleRoot(refs), blobCount: refs.length / 32, logicalBytes: draft.logicalBytes,
    previousPointId: draft.previousPointId, provider: draft.provider, crashConsistent: draft.crashConsistent,
  };
  const agentSignature = signDetached(encodePointHeader(header), state.keys.signSecret);
  await finished;
  const committing = uploader.request(() => ({ commitPoint: { requestId: 0, header, refs, agentSignature } }), 'pointCommitted');
  committing.catch(() => undefined);
  // A failure to stage is reported once the commit has answered: the point may be committed either way.
  let staged: StagedFile | undefined;
  let stagingFailure: Error | undefined;
  try {
    staged = draft.remember?.(header.pointId);
  } catch (err) {
    stagingFailure = err as Error;
  }
  try {
    await committing;
  } catch (err) {
    if (/referenced blobs are not stored/.test((err as Error).message)) throw new MissingBlobsError((err as Error).message);
    // A commit that landed just before the connection dropped is retried once and meets itself.
    if (!(/already exists/.test((err as Error).message) && (await isOurs(uploader, header.pointId, agentSignature)))) throw err;
  }
  if (stagingFailure) throw stagingFailure;
  staged?.install();
  return { pointId: header.pointId, header, blobCount: header.blobCount };
}
