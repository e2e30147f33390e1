"""Make the bundled speech eval sets: espeak-ng reads each reference, saved as Ogg/Opus.

    python tools/speech_data.py     # needs espeak-ng (`make speech`) and fondasi[speech]

Opus at 24 kbit/s keeps a sentence near 10 KB (a 16 kHz WAV is ten times that), so the
twelve clips ship in the package with room to spare; PyAV (faster-whisper's decoder)
encodes them, so nothing beyond the speech extra is needed.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
from faster_whisper import decode_audio

DATA = Path(__file__).resolve().parents[1] / "src" / "fondasi" / "data"
SENTENCES = {
    "id": [
        "Selamat pagi, saya ingin memesan dua tiket kereta ke Bandung.",
        "Tolong kirim paket ini ke Surabaya besok pagi.",
        "Harga beras naik lagi minggu ini di pasar.",
        "Terima kasih atas bantuan Anda hari ini.",
        "Rapat akan dimulai pukul sembilan di ruang utama.",
        "Saya lupa kata sandi akun bank saya.",
    ],
    "en": [
        "Good morning, I would like to book two train tickets to London.",
        "Please send this package to Boston tomorrow morning.",
        "The price of rice went up again this week.",
        "Thank you for your help today.",
        "The meeting will start at nine in the main room.",
        "I forgot the password to my bank account.",
    ],
}
RATE = 16_000


def speak(text: str, voice: str, out: Path) -> None:
    """espeak-ng's voice for ``text``, resampled to 16 kHz mono and encoded as Opus."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
        samples = decode_audio(str(wav), sampling_rate=RATE)
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :]
    with av.open(str(out), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = 24_000
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def main() -> None:
    """Write ``data/speech/*.ogg`` and ``data/eval-speech-{id,en}.jsonl``."""
    (DATA / "speech").mkdir(exist_ok=True)
    for language, texts in SENTENCES.items():
        rows = []
        for number, text in enumerate(texts, start=1):
            name = f"speech/{language}-{number:02d}.ogg"
            speak(text, language, DATA / name)
            rows.append({"audio": name, "reference": text, "language": language})
        lines = [json.dumps(row, ensure_ascii=False) for row in rows]
        (DATA / f"eval-speech-{language}.jsonl").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
