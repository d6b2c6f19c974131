// chatstream/react: useChatStream, one answer's stream as React state. The client does the
// wire work (resume by Last-Event-ID with backoff, no duplicates, the watchdog, cancel); the
// hook folds its events into state with chat-state.js and owns the stream's lifetime.

import { useCallback, useEffect, useReducer, useRef } from "react";

import { chatStreamReducer, initialChatStreamState } from "./chat-state.js";

export { chatStreamReducer, initialChatStreamState } from "./chat-state.js";

// A session the hook creates is titled after the question, as the chat page titles it.
const TITLE_CHARS = 80;
const NO_JOB = Object.freeze({ jobId: null, lastEventId: 0 });

/** What the reducer may keep of a live stream: a copy, since the stream goes on changing. */
const positionOf = (stream) => ({
  jobId: stream.jobId,
  sessionId: stream.sessionId,
  lastEventId: stream.lastEventId,
});

/**
 * Follow one answer at a time through `client` (a ChatstreamClient made once, not per render).
 * Returns the state (status, steps, text, citations, error, ids) with send, resume, stop and
 * reset. Unmounting, or starting another answer, closes the connection but leaves the job
 * running on the server, so it can be resumed; stop() is what cancels a job.
 */
export function useChatStream(client, { onEvent } = {}) {
  const [state, dispatch] = useReducer(chatStreamReducer, initialChatStreamState);
  // The stream being followed, with a stop asked for before its job id was known.
  const running = useRef(null);
  // Where the last stream got to, for resume(): updated per event, read outside render.
  const position = useRef(NO_JOB);
  const onEventRef = useRef(onEvent);
  useEffect(() => {
    onEventRef.current = onEvent;
  });

  const cancel = useCallback(async (run) => {
    try {
      await run.stream.cancel();
    } catch (error) {
      // The cancel route could not be reached: at least stop reading here, and say why.
      run.stream.abort();
      if (running.current === run) dispatch({ type: "failed", error });
    }
  }, []);

  const follow = useCallback(
    async (open, { keep = false } = {}) => {
      running.current?.stream?.abort();
      const run = { stream: null, stopRequested: false };
      running.current = run;
      const current = () => running.current === run;
      if (!keep) position.current = NO_JOB;
      dispatch({ type: "begin", keep });
      try {
        const stream = await open();
        run.stream = stream;
        if (!current()) {
          stream.abort();
          return;
        }
        for await (const event of stream) {
          if (!current()) return;
          position.current = { jobId: stream.jobId, lastEventId: stream.lastEventId };
          dispatch({ type: "event", event, stream: positionOf(stream) });
          onEventRef.current?.(event);
          if (run.stopRequested && stream.jobId) {
            run.stopRequested = false;
            cancel(run);
          }
        }
      } catch (error) {
        // An abort by reset(), unmount or a newer stream is not this stream's failure.
        if (current()) dispatch({ type: "failed", error });
      } finally {
        if (current()) running.current = null;
      }
    },
    [cancel],
  );

  const send = useCallback(
    (content, { sessionId, project, simpleLanguage, pipeline, title } = {}) =>
      follow(async () => {
        const options = { simpleLanguage, pipeline, cancelOnAbort: false };
        if (project) return client.projectChat(project, content, { ...options, sessionId });
        const id = sessionId ?? (await client.createSession({ title: title ?? content.slice(0, TITLE_CHARS) })).id;
        return client.sendMessage(id, content, options);
      }),
    [client, follow],
  );

  const resume = useCallback(
    (jobId, { lastEventId } = {}) => {
      const same = jobId === undefined || jobId === position.current.jobId;
      const target = same ? position.current.jobId : jobId;
      if (!target) return Promise.reject(new Error("useChatStream: there is no job to resume"));
      const from = lastEventId ?? (same ? position.current.lastEventId : 0);
      // Resuming the answer on screen from where it stopped keeps what is shown.
      const keep = same && from > 0 && from === position.current.lastEventId;
      return follow(() => client.resume(target, { lastEventId: from, cancelOnAbort: false }), { keep });
    },
    [client, follow],
  );

  const stop = useCallback(async () => {
    const run = running.current;
    if (!run) return;
    if (run.stream?.jobId) await cancel(run);
    else run.stopRequested = true;
  }, [cancel]);

  const reset = useCallback(() => {
    const run = running.current;
    running.current = null;
    run?.stream?.abort();
    position.current = NO_JOB;
    dispatch({ type: "clear" });
  }, []);

  useEffect(
    () => () => {
      const run = running.current;
      running.current = null;
      run?.stream?.abort();
    },
    [],
  );

  return { ...state, send, resume, stop, reset };
}
