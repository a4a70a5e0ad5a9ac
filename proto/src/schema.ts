/**
 * @module The compiled protobuf schema of every .proto in this package
 * (generated into descriptor.json at build time by scripts/descriptor.mjs).
 */
import protobuf from 'protobufjs';
import descriptor from './descriptor.json' with { type: 'json' };

export const protoRoot = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
