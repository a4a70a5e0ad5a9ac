/**
 * @module A TCP proxy between agent and gateway that counts the bytes each
 * way and can cut every connection at a chosen moment, to test resume.
 */
import net from 'node:net';

export class CuttingProxy {
  private server!: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  upstreamBytes = 0;
  cuts = 0;
  /** Cut all connections once this many agent→gateway bytes have passed. */
  cutAtBytes = Infinity;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client).add(upstream);
      const drop = () => { client.destroy(); upstream.destroy(); this.sockets.delete(client); this.sockets.delete(upstream); };
      client.on('data', (d) => {
        this.upstreamBytes += d.length;
        if (this.upstreamBytes >= this.cutAtBytes) { this.cutAtBytes = Infinity; this.cuts++; this.cutAll(); return; }
        if (!upstream.write(d)) client.pause();
      });
      upstream.on('drain', () => client.resume());
      upstream.on('data', (d) => { if (!client.write(d)) upstream.pause(); });
      client.on('drain', () => upstream.resume());
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  cutAll(): void { for (const s of this.sockets) s.destroy(); this.sockets.clear(); }

  close(): Promise<void> { this.cutAll(); return new Promise((resolve) => this.server.close(() => resolve())); }
}
