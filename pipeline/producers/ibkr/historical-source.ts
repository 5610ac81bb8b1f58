import type { IbHistoricalBar } from './historical-bars.js';
import type { HistoricalChunkRequest } from './historical-request.js';

/** The contract of a historical request, as IB's `Contract` names its fields. */
export interface HistoricalContract {
  readonly symbol: string;
  readonly secType: string;
  readonly exchange: string;
  readonly currency: string;
  readonly primaryExch?: string;
}

/** IB's answer to one historical request. */
export interface HistoricalReply {
  readonly bars: readonly IbHistoricalBar[];
  /** IB answered "HMDS query returned no data" (error 162): an empty chunk, e.g. outside trading hours. */
  readonly noData: boolean;
  /** Time the request waited for the pacer before it was sent. */
  readonly pacingWaitMs: number;
}

/** Progress of a request while it waits for the pacer or for IB, for heartbeats. */
export interface HistoricalProgress {
  readonly phase: 'pacing' | 'requesting';
  readonly waitedMs: number;
}

/**
 * Where historical bars come from: one paced `reqHistoricalData` per call. Requests wait for the
 * pacer rather than violate IB's limits.
 *
 * @throws HistoricalDataError when IB answers with an error (other than "no data"), does not answer
 *   in time, or the connection drops.
 */
export interface HistoricalBarsSource {
  request(
    contract: HistoricalContract,
    request: HistoricalChunkRequest,
    options: { readonly signal?: AbortSignal; readonly onProgress?: (progress: HistoricalProgress) => void },
  ): Promise<HistoricalReply>;
}
