// Speak: stream `/v1/speak/stream` and play each sentence's audio through Web Audio as it arrives,
// highlight the word being spoken from the word marks, and stop (barge-in) saying what was heard.

import { call, serverEvents } from "./api.js";

/** Samples of one `audio` event (base64 of 16-bit mono PCM) as floats. */
export function pcm16ToFloats(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const ints = new Int16Array(bytes.buffer, 0, bytes.byteLength >> 1);
  const floats = new Float32Array(ints.length);
  for (let i = 0; i < ints.length; i++) floats[i] = ints[i] / 32768;
  return floats;
}

/** One utterance being played: its audio pieces on the context's clock, and its words. */
export class Utterance {
  constructor(context, output) {
    this.context = context;
    this.output = output;
    this.pieces = []; // {source, at (context seconds), from (utterance seconds), seconds}
    this.words = []; // {text, start_ms, end_ms}
    this.queuedUntil = 0; // context time the last piece ends
    this.spokenSeconds = 0; // utterance time of the audio queued so far
    this.samples = 0;
    this.peak = 0;
    this.ended = false; // the stream is over (done, error or stopped): nothing more will be queued
  }

  /** Queue `floats` at `rate` right after what is queued (or now, if playback ran dry). */
  play(floats, rate) {
    const buffer = this.context.createBuffer(1, floats.length, rate);
    buffer.copyToChannel(floats, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    const at = Math.max(this.context.currentTime + 0.03, this.queuedUntil);
    source.start(at);
    this.pieces.push({ source, at, from: this.spokenSeconds, seconds: buffer.duration });
    this.queuedUntil = at + buffer.duration;
    this.spokenSeconds += buffer.duration;
    this.samples += floats.length;
    for (const x of floats) this.peak = Math.max(this.peak, Math.abs(x));
  }

  /** Milliseconds of the utterance heard so far (gaps while waiting for audio do not count). */
  playedMs() {
    const now = this.context.currentTime;
    let heard = 0;
    for (const piece of this.pieces) {
      if (now < piece.at) break;
      heard = piece.from + Math.min(now - piece.at, piece.seconds);
    }
    return heard * 1000;
  }

  /** The index of the word being spoken at `ms`, or -1. */
  wordAt(ms) {
    return this.words.findIndex((w) => w.start_ms <= ms && ms < w.end_ms);
  }

  /** The words whose end has been heard by `ms`. */
  heardText(ms) {
    return this.words.filter((w) => w.end_ms <= ms).map((w) => w.text).join(" ");
  }

  stop() {
    for (const piece of this.pieces) {
      try {
        piece.source.stop();
      } catch {
        // not started yet
      }
    }
  }
}

/** The Speak panel. */
export class SpeakPanel {
  constructor(elements) {
    this.el = elements;
    this.context = null;
    this.analyser = null;
    this.utterance = null;
    this.abort = null;
    this.highlighted = []; // indexes of the words highlighted, in order (read by tests)
    this.heard = null;
    elements.play.addEventListener("click", () => this.play());
    elements.stop.addEventListener("click", () => this.stop());
    elements.download.addEventListener("click", () => this.download());
    elements.speed.addEventListener("input", () => {
      elements.speedValue.textContent = Number(elements.speed.value).toFixed(2);
    });
  }

  /** The RMS level at the output right now (the audio graph, read by tests). */
  level() {
    if (!this.analyser) return 0;
    const data = new Float32Array(this.analyser.fftSize);
    this.analyser.getFloatTimeDomainData(data);
    return Math.sqrt(data.reduce((sum, x) => sum + x * x, 0) / data.length);
  }

  request() {
    const body = { text: this.el.text.value, speed: Number(this.el.speed.value) };
    if (this.el.voice.value) body.voice = this.el.voice.value;
    return body;
  }

  async play() {
    this.stop();
    this.el.error.textContent = "";
    this.el.heard.textContent = "";
    this.el.info.textContent = "";
    this.el.words.replaceChildren();
    this.highlighted = [];
    this.heard = null;
    if (!this.context) {
      this.context = new AudioContext();
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = 2048;
      this.analyser.connect(this.context.destination);
    }
    await this.context.resume();
    const utterance = new Utterance(this.context, this.analyser);
    this.utterance = utterance;
    this.abort = new AbortController();
    this.el.play.disabled = true;
    this.el.stop.disabled = false;
    const started = performance.now();
    requestAnimationFrame(() => this.follow(utterance));
    try {
      const response = await call("/v1/speak/stream", {
        method: "POST",
        body: this.request(),
        signal: this.abort.signal,
        raw: true,
      });
      for await (const { event, data } of serverEvents(response)) {
        if (event === "mark") this.addWords(utterance, data.words);
        else if (event === "audio") {
          if (utterance.samples === 0) this.el.info.textContent = `first audio after ${Math.round(performance.now() - started)} ms`;
          utterance.play(pcm16ToFloats(data.pcm16), data.sample_rate);
        } else if (event === "done") {
          const cost = data.cost ? `, engine ${data.cost.engine_ms} ms, queue ${data.cost.queue_ms} ms` : "";
          this.el.info.textContent += ` · ${(data.audio_ms / 1000).toFixed(1)} s of speech in ${data.sentences} sentences${cost}`;
        } else if (event === "error") throw new Error(`${data.code}: ${data.message}`);
      }
    } catch (error) {
      if (error.name !== "AbortError") this.el.error.textContent = error.message;
    } finally {
      utterance.ended = true;
      this.abort = null;
      this.el.play.disabled = false;
    }
  }

  addWords(utterance, words) {
    for (const word of words || []) {
      const span = document.createElement("span");
      span.textContent = word.text;
      this.el.words.append(span, " ");
      utterance.words.push(word);
    }
  }

  /** Highlight the word being spoken, frame by frame, until the utterance is over or stopped. */
  follow(utterance) {
    if (utterance !== this.utterance) return;
    const ms = utterance.playedMs();
    const now = utterance.wordAt(ms);
    const spans = this.el.words.querySelectorAll("span");
    spans.forEach((span, i) => {
      span.classList.toggle("now", i === now);
      span.classList.toggle("spoken", utterance.words[i] && utterance.words[i].end_ms <= ms);
    });
    if (now >= 0 && this.highlighted[this.highlighted.length - 1] !== now) this.highlighted.push(now);
    const finished = utterance.ended && this.context.currentTime >= utterance.queuedUntil;
    if (finished) {
      this.el.stop.disabled = true;
      spans.forEach((span) => span.classList.remove("now"));
      return;
    }
    requestAnimationFrame(() => this.follow(utterance));
  }

  /** Barge in: stop the stream (the server stops at the next sentence) and the audio now. */
  stop() {
    const utterance = this.utterance;
    if (!utterance) return;
    const ms = utterance.playedMs();
    if (this.abort) this.abort.abort();
    utterance.stop();
    this.utterance = null;
    this.el.stop.disabled = true;
    this.heard = { text: utterance.heardText(ms), ms: Math.round(ms) };
    this.el.heard.textContent = `Heard (${(ms / 1000).toFixed(1)} s): ${this.heard.text || "nothing yet"}`;
    this.el.words.querySelectorAll("span").forEach((span) => span.classList.remove("now"));
  }

  /** The same text as a clip in the chosen format, saved as a file. */
  async download() {
    this.el.error.textContent = "";
    const format = this.el.format.value;
    const body = { model: "piper", input: this.el.text.value, response_format: format, speed: Number(this.el.speed.value) };
    body.voice = this.el.voice.value || "alloy";
    try {
      const response = await call("/v1/audio/speech", { method: "POST", body, raw: true });
      const blob = await response.blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `speech.${format === "opus" ? "ogg" : format === "aac" ? "aac" : format}`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (error) {
      this.el.error.textContent = error.message;
    }
  }
}
