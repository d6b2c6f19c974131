// An incremental Server-Sent Events parser, per the WHATWG rules: any of CRLF, LF or CR ends a
// line (a CRLF may be split across two chunks), comments are reported apart, data lines join
// with newlines, and the last event id persists from message to message. chatstream.js uses it
// over fetch's ReadableStream; it has no dependencies and no DOM.

/**
 * Feed it text with push(); it calls onMessage with {id, hasId, event, data} for each dispatched
 * message, onComment for each comment line and onRetry for a retry field. `id` is the last
 * event id seen so far (the spec's "last event ID buffer"); `hasId` says this message set one.
 */
export class SseParser {
  constructor({ onMessage = () => {}, onComment = () => {}, onRetry = () => {} } = {}) {
    this.onMessage = onMessage;
    this.onComment = onComment;
    this.onRetry = onRetry;
    this.buffer = "";
    this.lastEventId = "";
    this.resetMessage();
  }

  resetMessage() {
    this.data = [];
    this.event = "";
    this.sawId = false;
  }

  push(text) {
    this.buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf("\r", start);
      const lf = this.buffer.indexOf("\n", start);
      if (cr < 0 && lf < 0) break;
      let end;
      let next;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        // A CR at the very end may be the first half of a CRLF split across two chunks.
        if (cr === this.buffer.length - 1) break;
        end = cr;
        next = this.buffer[cr + 1] === "\n" ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      this.line(this.buffer.slice(start, end));
      start = next;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** The stream ended: a message without its closing blank line is dropped, as the spec says. */
  end() {
    this.buffer = "";
    this.resetMessage();
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) {
      this.onComment(line.slice(1).replace(/^ /, ""));
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) {
      this.lastEventId = value;
      this.sawId = true;
    } else if (field === "retry" && /^\d+$/.test(value)) this.onRetry(Number(value));
  }

  dispatch() {
    if (this.data.length > 0) {
      this.onMessage({
        id: this.lastEventId,
        hasId: this.sawId,
        event: this.event || "message",
        data: this.data.join("\n"),
      });
    }
    this.resetMessage();
  }
}
