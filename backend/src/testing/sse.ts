/** A minimal Server-Sent Events reader for tests: real HTTP, events parsed as they arrive. */
export interface SseEvent {
  event: string;
  id?: string;
  data: any;
}

export interface SseConnection {
  status: number;
  events: SseEvent[];
  comments: string[];
  /** Resolves when the server ends the response (or it fails), not when `close()` is called. */
  ended: Promise<void>;
  /** Resolves when `predicate` holds for the events received so far. */
  until(predicate: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string>): Promise<SseConnection> {
  const controller = new AbortController();
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let notify = () => {};
  let ended: Promise<void> = new Promise(() => {});
  const body = res.ok ? res.body : null;
  if (body) {
    ended = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of body) {
          buffer += decoder.decode(chunk, { stream: true });
          let end = buffer.indexOf('\n\n');
          while (end !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event: SseEvent = { event: 'message', data: '' };
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) comments.push(line.slice(1).trim());
              else if (line.startsWith('event:')) event.event = line.slice(6).trim();
              else if (line.startsWith('id:')) event.id = line.slice(3).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (data.length > 0) {
              const text = data.join('\n');
              try {
                event.data = JSON.parse(text);
              } catch {
                event.data = text;
              }
              events.push(event);
            }
            notify();
            end = buffer.indexOf('\n\n');
          }
        }
      } catch {
        // failed, or aborted by close()
      }
      if (controller.signal.aborted) await new Promise(() => {});
    })();
  }
  return {
    status: res.status,
    events,
    comments,
    ended,
    until(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `SSE: condition not met in ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.event))}`,
              ),
            ),
          timeoutMs,
        );
        const check = () => {
          if (predicate(events)) {
            clearTimeout(timer);
            notify = () => {};
            resolve(events);
          }
        };
        notify = check;
        check();
      });
    },
    close() {
      controller.abort();
    },
  };
}
