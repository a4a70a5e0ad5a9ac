/**
 * @module TypeScript shapes of the messages in bulwark.proto and storage.proto
 * (camelCase field names, bytes as Buffer, 64-bit integers as number).
 * Keep in step with the .proto files; codec.test.ts round-trips every frame.
 */

export enum ErrorCode {
  ERROR_UNSPECIFIED = 0,
  UNSUPPORTED_VERSION = 1,
  FRAME_TOO_LARGE = 2,
  MALFORMED_FRAME = 3,
  UNAUTHENTICATED = 4,
  FORBIDDEN = 5,
  NOT_FOUND = 6,
  BAD_REQUEST = 7,
  CONFLICT = 8,
  TOKEN_INVALID = 9,
  INTERNAL = 10,
  UNEXPECTED_FRAME = 11,
}

export interface ErrorMsg { code: ErrorCode; message: string; requestId?: number }
export interface Hello { protocolVersion: number; agentVersion?: string }
export interface HelloOk { protocolVersion: number; siteId: string; agentId: string; maxFrameBytes: number; needsKeyDeposit?: boolean }
export interface EnrollRequest { protocolVersion: number; token: string; csrDer: Buffer; hostname: string; signPublicKey: Buffer }
export interface EnrollResponse {
  agentId: string; siteId: string; certificateDer: Buffer; caCertificateDer: Buffer;
  recoveryPublicKey: Buffer; gatewaySignPublicKey: Buffer;
  commandPublicKey?: Buffer; brokerUrl?: string;
}
export interface DepositKey { sealedMasterKey: Buffer }
export interface OpenSession { resumeSessionId?: Buffer }
export interface SessionOpened { sessionId: Buffer; resumed?: boolean; creditBytes: number }
export interface HaveQuery { requestId: number; blobIds: Buffer[] }
export interface HaveAnswer { requestId: number; missing?: number[] }
export interface Blob { id: Buffer; envelope: Buffer }
export interface BlobData { requestId?: number; blobs: Blob[] }
export interface Credit { bytes: number }
export interface Flush { requestId: number }
export interface Ack { blobIds?: Buffer[]; flushRequestId?: number }
export interface PointHeader {
  pointId: Buffer; agentId: string; createdUnixMs: number; kind: 'files' | 'volume';
  manifestBlobId: Buffer; merkleRoot: Buffer; blobCount: number; logicalBytes: number;
  previousPointId?: Buffer; provider?: string; crashConsistent?: boolean;
}
export interface CommitPoint { requestId: number; header: PointHeader; refs: Buffer; agentSignature: Buffer }
export interface PointCommitted { requestId: number; pointId: Buffer; gatewaySignature: Buffer }
export interface ListPoints { requestId: number; agentId?: string }
export interface PointSummary { header: PointHeader; agentSignature: Buffer; gatewaySignature: Buffer; state: string }
export interface PointList { requestId: number; points?: PointSummary[] }
export interface GetPoint { requestId: number; pointId: Buffer }
export interface PointData { requestId: number; summary: PointSummary; refs: Buffer }
export interface ReadBlobs { requestId: number; blobIds: Buffer[]; agentId?: string }
export interface ReadDone { requestId: number; missing?: number[] }
export interface RecoveryOpen { requestId: number; sourceAgentId: string; restorePassword: string }
export interface RecoveryGrant { requestId: number; sourceAgentId: string; masterKey: Buffer; signPublicKey: Buffer }

/** Exactly one member is set. */
export interface Frame {
  hello?: Hello; helloOk?: HelloOk; error?: ErrorMsg;
  enrollRequest?: EnrollRequest; enrollResponse?: EnrollResponse; depositKey?: DepositKey;
  openSession?: OpenSession; sessionOpened?: SessionOpened;
  haveQuery?: HaveQuery; haveAnswer?: HaveAnswer; blobData?: BlobData; credit?: Credit;
  flush?: Flush; ack?: Ack; commitPoint?: CommitPoint; pointCommitted?: PointCommitted;
  listPoints?: ListPoints; pointList?: PointList; getPoint?: GetPoint; pointData?: PointData;
  readBlobs?: ReadBlobs; readDone?: ReadDone; recoveryOpen?: RecoveryOpen; recoveryGrant?: RecoveryGrant;
}

export enum NodeType { FILE = 0, DIR = 1, SYMLINK = 2 }

export interface TreeNode {
  name: Buffer; type: NodeType; mode: number; uid: number; gid: number; size: number; mtimeSec: number; mtimeNsec: number;
  symlinkTarget?: Buffer; content?: Buffer[]; contentSizes?: number[]; subtree?: Buffer; hardlinkId?: number;
}
export interface Tree { nodes: TreeNode[]; parts?: Buffer[] }
export interface SourceRoot { path: string; root: TreeNode }
export interface Extent { offset: number; length: number; blobId?: Buffer; blobIndex?: number; blobOffset?: number }
export interface VolumeMap {
  path: string; sizeBytes: number; blockSize: number; extents: Extent[]; merkleRoot: Buffer;
  blobs?: Buffer[]; provider?: string; crashConsistent?: boolean; snapshot?: string; dataBytes?: number;
}
export interface Manifest { hostname: string; roots: SourceRoot[]; volume?: VolumeMap; files: number; dirs: number; bytesRead: number }
