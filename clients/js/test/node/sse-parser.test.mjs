// The SSE parser on its own: line ends, chunk splits, comments and multi-line data.
import assert from "node:assert/strict";
import { test } from "node:test";

import { SseParser, backoffDelayMs } from "../../src/chatstream.js";

function parse(chunks) {
  const messages = [];
  const comments = [];
  const retries = [];
  const parser = new SseParser({
    onMessage: (m) => messages.push(m),
    onComment: (c) => comments.push(c),
    onRetry: (ms) => retries.push(ms),
  });
  for (const chunk of chunks) parser.push(chunk);
  return { messages, comments, retries };
}

test("an event split across two chunks is dispatched once, whole", () => {
  const { messages } = parse(['id: 1\ndata: {"type":"to', 'ken","content":"hi"}\n\n']);
  assert.deepEqual(messages, [{ id: "1", hasId: true, event: "message", data: '{"type":"token","content":"hi"}' }]);
});

test("a split on every byte gives the same messages as one chunk", () => {
  const wire = "retry: 2000\n\nid: 1\ndata: a\n\n: ping\n\nid: 2\ndata: b\ndata: c\n\n";
  const whole = parse([wire]).messages;
  assert.deepEqual(parse([...wire]).messages, whole);
  assert.deepEqual(
    whole.map((m) => [m.id, m.data]),
    [["1", "a"], ["2", "b\nc"]],
  );
});

test("CRLF line ends, even with the CR and the LF in different chunks", () => {
  const { messages, retries } = parse(["retry: 1500\r\n\r\nid: 7\r\ndata: x\r", "\n\r\nid: 8\r\ndata: y\r\n\r\n"]);
  assert.deepEqual(retries, [1500]);
  assert.deepEqual(
    messages.map((m) => [m.id, m.data]),
    [["7", "x"], ["8", "y"]],
  );
});

test("a lone CR also ends a line", () => {
  // The last CR waits for the next chunk, which could begin with the LF of a CRLF.
  const { messages } = parse(["id: 3\rdata: z\r\r", "data: w"]);
  assert.deepEqual(messages.map((m) => [m.id, m.data]), [["3", "z"]]);
});

test("a comment line is reported and dispatches nothing", () => {
  const { messages, comments } = parse([": keep-alive\n\n", ":no space\ndata: after\n\n"]);
  assert.deepEqual(comments, ["keep-alive", "no space"]);
  assert.deepEqual(messages.map((m) => m.data), ["after"]);
});

test("multi-line data is joined with newlines; one leading space is stripped", () => {
  const { messages } = parse(["data: line one\ndata:line two\ndata:  indented\n\n"]);
  assert.equal(messages[0].data, "line one\nline two\n indented");
});

test("event names, and a message without data is not dispatched", () => {
  const { messages } = parse(["event: snapshot\ndata: {}\n\n", "id: 4\n\n", "data: next\n\n"]);
  assert.deepEqual(
    messages.map((m) => [m.event, m.data, m.id, m.hasId]),
    [
      ["snapshot", "{}", "", false],
      // The id of the empty block still moves the last event id, as the spec says.
      ["message", "next", "4", false],
    ],
  );
});

test("a message cut before its blank line is not dispatched", () => {
  const parser = new SseParser({ onMessage: () => assert.fail("dispatched a partial message") });
  parser.push("id: 9\ndata: partial");
  parser.end();
});

test("backoff grows, stays capped, and is jittered within [step/2, step]", () => {
  const low = (n) => backoffDelayMs(n, { initialDelayMs: 100, maxDelayMs: 1000, random: () => 0 });
  const high = (n) => backoffDelayMs(n, { initialDelayMs: 100, maxDelayMs: 1000, random: () => 1 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(high), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(low), [50, 100, 200, 400, 500, 500]);
});
