// Calls to the server from the page: the bearer token (kept in this tab's session storage, never in
// a URL), the contract's error object, and WebSockets opened with a one-use ticket (a browser cannot
// set a header on a socket; the ticket travels as a subprotocol).

const TOKEN_KEY = "speech-tools.token";

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** The contract's error object, as an exception. */
export class ApiError extends Error {
  constructor(body, status) {
    super(body.message || `HTTP ${status}`);
    this.code = body.code || "internal";
    this.status = status;
    this.retryable = Boolean(body.retryable);
  }
}

/** Fetch `path` as the caller; JSON back, or the response itself with `raw`. A 401 asks for a token. */
export async function call(path, { method = "GET", body, signal, raw = false } = {}) {
  const headers = {};
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  if (!response.ok) {
    let error = { code: "internal", message: `HTTP ${response.status}` };
    try {
      error = (await response.json()).error || error;
    } catch {
      // not JSON: keep the status
    }
    if (response.status === 401) document.dispatchEvent(new CustomEvent("unauthorized", { detail: error }));
    throw new ApiError(error, response.status);
  }
  return raw ? response : response.json();
}

/** A WebSocket to `path` on this server, opened as the caller with a fresh socket ticket. */
export async function openSocket(path) {
  const { subprotocols } = await call("/v1/socket-tickets", { method: "POST" });
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, subprotocols);
  socket.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve, { once: true });
    socket.addEventListener("error", () => reject(new Error("the socket could not be opened")), { once: true });
  });
  return socket;
}

/** Server-Sent Events of a streamed response, as {event, data} objects. */
export async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}
