export * from './types.js';
export * from './codec.js';
export { decodeVolumeMap, VolumeMapEncoder, type VolumeMapHead, type VolumeMapTail, type ExtentVisitor } from './volume-map-codec.js';
export * from './merkle.js';
export * from './terminal.js';
export * from './fleet-types.js';
export * from './fleet-codec.js';
export * from './free-now.js';
export * from './whole-messages.js';
