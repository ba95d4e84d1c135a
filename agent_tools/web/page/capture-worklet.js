// The microphone's samples, resampled to 16 kHz and sent on as 16-bit PCM every 100 ms.

const TARGET_RATE = 16000;
const FRAME = TARGET_RATE / 10;

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.position = 0; // where the next output sample falls, in input samples from `previous`
    this.previous = 0;
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    // Linear interpolation between input samples, after averaging over the step (a box low-pass).
    for (;;) {
      const index = Math.floor(this.position);
      if (index >= channel.length) break;
      const from = Math.max(0, index - Math.floor(this.step) + 1);
      let sum = 0;
      for (let i = from; i <= index; i++) sum += channel[i];
      const current = sum / (index - from + 1);
      const before = index === 0 ? this.previous : channel[index - 1];
      const fraction = this.position - index;
      const value = before + (current - before) * fraction;
      this.frame[this.filled++] = Math.max(-32768, Math.min(32767, Math.round(value * 32767)));
      if (this.filled === FRAME) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(FRAME);
        this.filled = 0;
      }
      this.position += this.step;
    }
    this.position -= channel.length;
    this.previous = channel[channel.length - 1];
    return true;
  }
}

registerProcessor("capture", Capture);
