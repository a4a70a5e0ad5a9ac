// Compiles every .proto in src/ into one JSON descriptor that the codecs load
// at start-up: faster than parsing .proto text, and bundlable.
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';

const src = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'src');
const files = fs.readdirSync(src).filter((f) => f.endsWith('.proto')).sort().map((f) => path.join(src, f));
const root = new protobuf.Root().loadSync(files, { keepCase: false });
fs.writeFileSync(path.join(src, 'descriptor.json'), JSON.stringify(root.toJSON()));
