// Listen: the microphone, or a dropped file, to `/v1/transcribe/ws` — partials as they come, each
// final with its words and latency.

import { openSocket } from "./api.js";

const RATE = 16000;

/** The Listen panel. */
export class ListenPanel {
  constructor(elements) {
    this.el = elements;
    this.session = null;
    this.finals = []; // each final event (read by tests)
    this.ended = []; // how each transcription ended: its `done` or `error` event
    elements.mic.addEventListener("click", () => (this.session ? this.stop() : this.microphone()));
    elements.file.addEventListener("change", () => elements.file.files[0] && this.file(elements.file.files[0]));
    const drop = elements.drop;
    drop.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      const file = event.dataTransfer.files[0];
      if (file) this.file(file);
    });
  }

  /** A transcription socket whose events fill the panel; resolves when the server says `done`. */
  async open() {
    this.el.error.textContent = "";
    this.el.partial.textContent = "";
    const socket = await openSocket(`/v1/transcribe/ws?sample_rate=${RATE}`);
    const done = new Promise((resolve) => {
      socket.addEventListener("message", (message) => {
        if (typeof message.data !== "string") return;
        const event = JSON.parse(message.data);
        this.show(event);
        if (event.type === "done" || event.type === "error") resolve(event);
      });
      socket.addEventListener("close", () => resolve({ type: "closed" }));
    }).then((event) => {
      this.ended.push(event);
      return event;
    });
    return { socket, done };
  }

  show(event) {
    if (event.type === "partial") this.el.partial.textContent = event.text;
    else if (event.type === "final") {
      this.el.partial.textContent = "";
      this.finals.push(event);
      const item = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = event.text;
      const meta = document.createElement("div");
      meta.className = "meta";
      const words = (event.words || []).map((w) => `${w.word.trim()} ${w.start.toFixed(2)}–${w.end.toFixed(2)}`);
      meta.textContent = `${event.latency_ms} ms after the end of speech · ${words.join(" · ")}`;
      item.append(text, meta);
      this.el.finals.append(item);
    } else if (event.type === "error") this.el.error.textContent = `${event.code}: ${event.message}`;
  }

  async microphone() {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      const context = new AudioContext();
      await context.audioWorklet.addModule("/page/capture-worklet.js");
      const { socket, done } = await this.open();
      const capture = new AudioWorkletNode(context, "capture");
      capture.port.onmessage = (message) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(message.data);
      };
      const silent = context.createGain(); // keeps the worklet pulled without playing the microphone
      silent.gain.value = 0;
      context.createMediaStreamSource(stream).connect(capture).connect(silent).connect(context.destination);
      this.session = { socket, done, stream, context };
      this.el.mic.textContent = "■ Stop microphone";
      done.then(() => this.release());
    } catch (error) {
      this.el.error.textContent = error.message;
      this.release();
    }
  }

  /** End the microphone's stream: the server finishes the last utterance, then says `done`. */
  async stop() {
    const session = this.session;
    if (!session) return;
    if (session.socket.readyState === WebSocket.OPEN) session.socket.send(JSON.stringify({ type: "end" }));
    session.stream.getTracks().forEach((track) => track.stop());
    await session.done;
    this.release();
  }

  release() {
    const session = this.session;
    this.session = null;
    this.el.mic.textContent = "● Start microphone";
    if (!session) return;
    session.stream.getTracks().forEach((track) => track.stop());
    session.context.close();
    if (session.socket.readyState === WebSocket.OPEN) session.socket.close();
  }

  /** A file, decoded and resampled by the browser, sent as 16 kHz PCM then `end`. */
  async file(file) {
    try {
      const decoder = new AudioContext();
      const decoded = await decoder.decodeAudioData(await file.arrayBuffer());
      decoder.close();
      const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * RATE), RATE);
      const source = offline.createBufferSource();
      source.buffer = decoded;
      source.connect(offline.destination);
      source.start();
      const samples = (await offline.startRendering()).getChannelData(0);
      const { socket, done } = await this.open();
      for (let start = 0; start < samples.length; start += RATE / 2) {
        const piece = samples.subarray(start, start + RATE / 2);
        const ints = new Int16Array(piece.length);
        for (let i = 0; i < piece.length; i++) ints[i] = Math.max(-32768, Math.min(32767, Math.round(piece[i] * 32767)));
        while (socket.bufferedAmount > 1 << 20) await new Promise((resolve) => setTimeout(resolve, 20));
        socket.send(ints.buffer);
      }
      socket.send(JSON.stringify({ type: "end" }));
      await done;
      socket.close();
    } catch (error) {
      this.el.error.textContent = error.message;
    }
  }
}
