/**
 * A wire tap for backfill tests: a TCP relay on 127.0.0.1 between a client and the fake TWS that
 * forwards every byte unchanged, both ways, and decodes what the client sends to record each
 * reqHistoricalData with its parameters (the fake TWS's own request log keeps only message names
 * and request ids). Kept beside the fake TWS, not in it, so the fake stays one engineer's code.
 *
 * The client's side is parsed with the fake TWS's own frame reader, so the tap sees what TWS sees.
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { CLIENT_MSG, ClientFrameReader, FieldReader, readContract } from './protocol.js';

/** One reqHistoricalData as TWS received it. */
export interface TappedHistoricalRequest {
  /** Relay connection number (1, 2, … in connect order: a reconnecting client gets a new one). */
  readonly connection: number;
  readonly reqId: number;
  readonly symbol: string;
  readonly exchange: string;
  readonly endDateTime: string;
  readonly barSize: string;
  readonly duration: string;
  readonly useRTH: boolean;
  readonly whatToShow: string;
  readonly formatDate: number;
  readonly atMs: number;
}

export class HistoricalTap {
  readonly host = '127.0.0.1';
  readonly requests: TappedHistoricalRequest[] = [];
  readonly #server: Server;
  readonly #upstreamPort: number;
  readonly #sockets = new Set<Socket>();
  #nextConnection = 1;
  #port = 0;

  private constructor(upstreamPort: number) {
    this.#upstreamPort = upstreamPort;
    this.#server = createServer((client) => this.#relay(client));
  }

  /** Starts a tap in front of the fake TWS listening on `upstreamPort`. */
  static async start(upstreamPort: number): Promise<HistoricalTap> {
    const tap = new HistoricalTap(upstreamPort);
    await new Promise<void>((done, fail) => {
      tap.#server.once('error', fail);
      tap.#server.listen(0, tap.host, () => done());
    });
    const address = tap.#server.address();
    if (address === null || typeof address === 'string') throw new Error('the historical tap has no TCP address');
    tap.#port = address.port;
    return tap;
  }

  get port(): number {
    return this.#port;
  }

  /** `symbol|whatToShow|barSize|endDateTime|duration|useRTH`: equal keys ask for the same bars. */
  static key(r: TappedHistoricalRequest): string {
    return [r.symbol, r.whatToShow, r.barSize, r.endDateTime, r.duration, r.useRTH ? 1 : 0].join('|');
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((done) => this.#server.close(() => done()));
  }

  #relay(client: Socket): void {
    const connection = this.#nextConnection++;
    const upstream = connect(this.#upstreamPort, this.host);
    this.#sockets.add(client).add(upstream);
    const reader = new ClientFrameReader();
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      reader.push(chunk);
      try {
        for (let f = reader.next(); f !== undefined; f = reader.next()) {
          if (f.type === 'message' && Number(f.fields[0]) === CLIENT_MSG.REQ_HISTORICAL_DATA) this.#record(connection, f.fields);
        }
      } catch {
        // Not the TWS protocol: the fake TWS will close the connection itself; keep relaying.
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  #record(connection: number, fields: string[]): void {
    // Server versions ≥ 124 (all the fake speaks): no message version; the layout TWS reads.
    const r = new FieldReader(fields, 1);
    const reqId = r.int();
    const contract = readContract(r);
    r.bool(); // includeExpired
    const endDateTime = r.str();
    const barSize = r.str();
    const duration = r.str();
    const useRTH = r.bool();
    const whatToShow = r.str();
    const formatDate = r.int();
    this.requests.push({
      connection,
      reqId,
      symbol: contract.symbol,
      exchange: contract.exchange,
      endDateTime,
      barSize,
      duration,
      useRTH,
      whatToShow,
      formatDate,
      atMs: Date.now(),
    });
  }
}
