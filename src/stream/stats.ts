/**
 * The stream's counts, kept by the server and read by the metrics at each scrape: the
 * agent makes one and hands it to both, so neither refers to the other.
 */
export class StreamStats {
  /** WebSocket clients connected now. */
  clients = 0
  /** Frames not sent, since the start, to clients closed as too slow (they can replay them). */
  droppedEvents = 0
  /** Connections closed, since the start, because the cap on open connections was reached. */
  refusedConnections = 0
}
