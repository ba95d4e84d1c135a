// The playground: speak, listen, voices, the last eval report and the server's live figures.

import { ApiError, auth, call } from "./api.js";
import { ListenPanel } from "./listen.js";
import { SpeakPanel } from "./speak.js";

const $ = (id) => document.getElementById(id);

const speak = new SpeakPanel({
  text: $("speak-text"),
  voice: $("speak-voice"),
  speed: $("speak-speed"),
  speedValue: $("speak-speed-value"),
  play: $("speak-play"),
  stop: $("speak-stop"),
  words: $("speak-words"),
  heard: $("speak-heard"),
  info: $("speak-info"),
  format: $("download-format"),
  download: $("download"),
  error: $("speak-error"),
});
const listen = new ListenPanel({
  mic: $("listen-mic"),
  file: $("listen-file"),
  drop: $("listen-drop"),
  partial: $("listen-partial"),
  finals: $("listen-finals"),
  error: $("listen-error"),
});

// A sentence to start from in each language the voices speak (a voice reads text in its language).
const SAMPLES = {
  en: "Good evening, and welcome to the speech playground. Type anything here and press play to hear it.",
  es: "Buenas noches y bienvenidos. Escriba aquí cualquier texto y pulse reproducir para oírlo.",
  fr: "Bonsoir et bienvenue. Tapez ici n'importe quel texte et appuyez sur lecture pour l'entendre.",
  it: "Buonasera e benvenuti. Scrivete qui un testo qualsiasi e premete play per ascoltarlo.",
  pt: "Boa noite e bem-vindos. Escreva aqui qualquer texto e carregue em reproduzir para o ouvir.",
  hi: "नमस्ते, आपका स्वागत है। यहाँ कुछ भी लिखें और सुनने के लिए चलाएँ दबाएँ।",
  ja: "こんばんは、ようこそ。ここに好きな文章を入力して、再生を押すと聞こえます。",
  zh: "晚上好，欢迎光临。在这里输入任何文字，然后按播放就能听到。",
};

async function loadVoices() {
  const { voices, default_voice: defaultVoice } = await call("/v1/audio/voices");
  const select = $("speak-voice");
  const languages = $("speak-language");
  const text = $("speak-text");
  const showVoices = () => {
    const wanted = languages.value;
    const chosen = voices.filter((voice) => !wanted || voice.language === wanted);
    select.replaceChildren(
      ...chosen.map((voice) => {
        const label = `${voice.name}${voice.gender ? ` (${voice.gender})` : ""} · ${voice.engine}`;
        return new Option(label, voice.id, false, voice.id === defaultVoice);
      }),
    );
  };
  languages.replaceChildren(
    new Option("any language", ""),
    ...[...new Set(voices.map((voice) => voice.language))].sort().map((code) => new Option(code, code)),
  );
  languages.addEventListener("change", () => {
    showVoices();
    const sample = SAMPLES[languages.value.split("_")[0]];
    if (sample && Object.values(SAMPLES).includes(text.value)) text.value = sample; // only the page's own sample
  });
  showVoices();
  $("voices-rows").replaceChildren(
    ...voices.map((voice) => {
      const row = document.createElement("tr");
      const cells = [voice.id, voice.name, voice.gender || "", voice.engine, voice.language, voice.quality, `${voice.sample_rate} Hz`, (voice.speakers || []).length || 1, voice.licence];
      for (const value of cells) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      const use = document.createElement("button");
      use.type = "button";
      use.textContent = "use";
      use.addEventListener("click", () => {
        languages.value = voice.language;
        languages.dispatchEvent(new Event("change"));
        select.value = voice.id;
      });
      const cell = document.createElement("td");
      cell.append(use);
      row.append(cell);
      return row;
    }),
  );
}

/** The server's bounds of a speak request, on the controls (the server checks them anyway). */
function applyLimits(limits) {
  $("speak-speed").min = String(limits.speed.min);
  $("speak-speed").max = String(limits.speed.max);
  $("speak-text").maxLength = limits.text.max_chars;
}

async function showStatus() {
  const status = $("status");
  try {
    const s = await call("/v1/status");
    const state = document.createElement("span");
    state.className = s.ready ? "ready" : "not-ready";
    state.textContent = s.ready ? "ready" : "not ready";
    const queued = Object.values(s.queued).reduce((a, b) => a + b, 0);
    if (s.limits) applyLimits(s.limits);
    status.replaceChildren(
      state,
      ` · ${s.voice || "no voice"} · ${s.recognizer || "no recognizer"} · ${s.in_flight} in flight · ${queued} queued · ${s.live_streams} live`,
    );
  } catch (error) {
    status.textContent = error instanceof ApiError ? `${error.code}: ${error.message}` : "server unreachable";
  }
}

async function showEvalReport() {
  const info = $("eval-info");
  const frame = $("eval-report");
  try {
    const response = await call("/v1/eval/report", { raw: true });
    frame.srcdoc = await response.text();
    frame.hidden = false;
    info.textContent = "";
  } catch (error) {
    frame.hidden = true;
    info.textContent = error.message;
  }
}

async function start() {
  try {
    await loadVoices();
    $("token-form").hidden = true;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) $("speak-error").textContent = error.message;
  }
  await showStatus();
}

document.addEventListener("unauthorized", (event) => {
  $("token-form").hidden = false;
  $("token-error").textContent = auth.token ? event.detail.message : "";
});
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  auth.token = $("token").value.trim();
  $("token").value = "";
  start();
});
$("eval-show").addEventListener("click", showEvalReport);
setInterval(showStatus, 2000);
start();

// For people poking at it from the console, and for the browser tests.
window.playground = { speak, listen };
