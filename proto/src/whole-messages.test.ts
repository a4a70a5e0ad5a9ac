import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { allocMessage, frameInPlace, hasHeadroom, MESSAGE_HEADROOM, MessagePool, WholeMessageWriter } from './whole-messages.js';

const filled = (bytes: number, seed: number) => {
  const payload = allocMessage(bytes);
  for (let i = 0; i < bytes; i++) payload[i] = (i * 31 + seed) & 0xff;
  return payload;
};

describe('frameInPlace', () => {
  it('writes the header RFC 6455 gives each length class, mask key zero for a client', () => {
    for (const [length, lengthBytes] of [[5, 0], [125, 0], [126, 2], [65535, 2], [65536, 8], [300_000, 8]] as const) {
      for (const masked of [false, true]) {
        const payload = filled(length, 1);
        const frame = frameInPlace(payload, masked);
        const header = 2 + lengthBytes + (masked ? 4 : 0);
        expect(frame.length).toBe(header + length);
        expect(frame.buffer).toBe(payload.buffer);
        expect(frame.byteOffset).toBe(MESSAGE_HEADROOM - header);
        expect(frame[0]).toBe(0x82);
        expect(frame[1] & 0x80).toBe(masked ? 0x80 : 0);
        const code = frame[1] & 0x7f;
        const declared = code < 126 ? code : code === 126 ? frame.readUInt16BE(2) : Number(frame.readBigUInt64BE(2));
        expect(declared).toBe(length);
        if (masked) expect([...frame.subarray(header - 4, header)]).toEqual([0, 0, 0, 0]);
        expect(frame.subarray(header).equals(payload)).toBe(true);
      }
    }
  });

  it('knows which buffers have room in front', () => {
    expect(hasHeadroom(allocMessage(10))).toBe(true);
    expect(hasHeadroom(allocMessage(10).subarray(1))).toBe(false);
    expect(hasHeadroom(Buffer.alloc(MESSAGE_HEADROOM + 10).subarray(MESSAGE_HEADROOM))).toBe(false);
  });
});

describe('MessagePool', () => {
  it('reuses its own buffers, gives larger ones memory of their own, ignores strangers', () => {
    const pool = new MessagePool(1024, 1);
    const a = pool.take(100);
    expect(hasHeadroom(a)).toBe(true);
    pool.give(a);
    const b = pool.take(1024);
    expect(b.buffer).toBe(a.buffer);
    const big = pool.take(4096);
    expect(big.length).toBe(4096);
    expect(hasHeadroom(big)).toBe(true);
    pool.give(big);
    pool.give(allocMessage(1024));
    expect(pool.take(10).buffer).not.toBe(big.buffer);
  });
});

describe('WholeMessageWriter against a real ws peer', () => {
  const closers: (() => void)[] = [];
  afterEach(() => { for (const close of closers.splice(0)) close(); });

  /** A ws server and a ws client over loopback TCP; the writer sends on the client's side (masked) or the server's. */
  async function pair(fromClient: boolean) {
    const wss = new WebSocketServer({ port: 0, perMessageDeflate: false });
    await once(wss, 'listening');
    const received: Buffer[] = [];
    const serverSide = new Promise<{ ws: WebSocket; socket: net.Socket }>((resolve) => wss.on('connection', (ws, req) => {
      ws.on('message', (data: Buffer) => received.push(data));
      resolve({ ws, socket: req.socket as net.Socket });
    }));
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`, { perMessageDeflate: false, generateMask: (mask: Buffer) => { mask.fill(0); } });
    let clientSocket!: net.Socket;
    client.once('upgrade', (res) => { clientSocket = res.socket as net.Socket; });
    client.on('message', (data: Buffer) => received.push(data));
    await once(client, 'open');
    const server = await serverSide;
    closers.push(() => { client.terminate(); wss.close(); });
    const socket = fromClient ? clientSocket : server.socket;
    const writes: number[] = [];
    const write = socket.write.bind(socket) as (chunk: Uint8Array, cb?: () => void) => boolean;
    socket.write = ((chunk: Uint8Array, cb?: () => void) => { writes.push(chunk.length); return write(chunk, cb); }) as typeof socket.write;
    const writer = new WholeMessageWriter(fromClient ? client : server.ws, socket, fromClient);
    return { writer, received, writes, socket, peer: fromClient ? client : server.ws };
  }

  for (const fromClient of [true, false]) {
    it(`delivers messages in order, mixed with ones ws frames itself (${fromClient ? 'client' : 'server'} side)`, async () => {
      const { writer, received, peer } = await pair(fromClient);
      const sent: Buffer[] = [];
      const written: number[] = [];
      for (let i = 0; i < 12; i++) {
        const withRoom = i % 3 !== 2;
        const payload = withRoom ? filled([3, 200, 70_000, 2_000_000][i % 4], i) : Buffer.from(`plain ${i}`);
        sent.push(Buffer.from(payload));
        await writer.send(payload, () => written.push(i));
        if (i === 5) peer.send(Buffer.from('through ws'));
        if (i === 5) sent.push(Buffer.from('through ws'));
      }
      await writer.send(Buffer.from('last'));
      sent.push(Buffer.from('last'));
      while (received.length < sent.length) await new Promise((r) => setTimeout(r, 10));
      expect(received.map((b) => b.toString('hex'))).toEqual(sent.map((b) => b.toString('hex')));
      expect(written).toEqual([...Array(12).keys()]);
    });
  }

  it('sends a payload with headroom as one write of header and payload', async () => {
    for (const fromClient of [true, false]) {
      const { writer, received, writes } = await pair(fromClient);
      writes.length = 0;
      await writer.send(filled(70_000, 9));
      await writer.send(Buffer.from('after'));
      while (received.length < 2) await new Promise((r) => setTimeout(r, 10));
      expect(writes[0]).toBe(70_000 + 2 + 8 + (fromClient ? 4 : 0));
      expect(received[0].equals(filled(70_000, 9))).toBe(true);
    }
  });

  it('never lets a large message be merged into a writev with others (Node copies those)', async () => {
    for (const fromClient of [true, false]) {
      const { writer, received, socket } = await pair(fromClient);
      let largestMerged = 0;
      const internals = socket as unknown as { _writev: (chunks: { chunk: Uint8Array }[], cb: () => void) => void };
      const writev = internals._writev.bind(socket);
      internals._writev = (chunks, cb) => { for (const { chunk } of chunks) largestMerged = Math.max(largestMerged, chunk.length); writev(chunks, cb); };
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 20; i++) {
        sends.push(writer.send(filled(1_000_000, i)));
        sends.push(writer.send(Buffer.from(`small ${i}`)));
      }
      await Promise.all(sends);
      await writer.idle();
      while (received.length < 40) await new Promise((r) => setTimeout(r, 10));
      expect(largestMerged).toBeLessThan(1_000_000);
      expect(received[38].equals(filled(1_000_000, 19))).toBe(true);
      expect(received[39].toString()).toBe('small 19');
    }
  });

  it('refuses once the connection is closed, and still hands the buffer back', async () => {
    const { writer, peer } = await pair(true);
    peer.terminate();
    await new Promise((r) => setTimeout(r, 20));
    let handed = false;
    await expect(writer.send(allocMessage(10), () => { handed = true; })).rejects.toThrow(/closed/);
    expect(handed).toBe(true);
  });
});
