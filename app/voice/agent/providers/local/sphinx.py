"""PocketSphinx decoding, with nothing but pocketsphinx: one utterance at a time, partial
hypotheses while audio comes in, and a final that is dropped when nothing credible was heard.

It runs in a child process of its own (``python -m app.voice.agent.providers.local.sphinx``,
driven over stdin/stdout by ``decoder_processes``): the decoder is C code that holds the
GIL, so in the agent's process it would stall every session's event loop (two decoders in
two threads took twice as long as one here). The tests also use ``Recognizer`` directly.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

from pocketsphinx import Config, Decoder

# Fewer active HMMs per frame: a third less CPU at the same accuracy (0.28 against 0.43 s of
# CPU per second of speech). Dither: digital silence (a muted track) otherwise decodes as a
# word. cmninit: the cepstral mean of speech that came through a browser's WebRTC
# processing and Opus (pocketsphinx's own start value misheard a fresh decoder's first
# sentence, "what is what alike" for "what is the weather like"); the live mean adapts to
# each voice from there.
CMN_INIT = "44.1,4.6,-1.0,14.5,0.7,-0.3,1.9,-6.3,-3.4,-3.5,3.7,0.2,0.05"
DECODER_OPTIONS: dict[str, object] = {"maxhmmpf": 3000, "dither": True, "cmninit": CMN_INIT}
NON_WORDS = ("<s>", "</s>", "<sil>")
# What noise tends to decode as: a line of only these is not words.
FILLERS = frozenset({"ah", "oh", "uh", "um", "hm", "hmm", "mm", "huh", "eh", "er"})
# The mean word posterior of a line: real speech scored 0.38-0.98 here, garbled speech
# (reversed) 0.1-0.6; the threshold drops only the clearly garbled, it cannot do more.
MIN_WORD_POSTERIOR = 0.3


class Recognizer:
    """One decoder (~90 MB of models, ~0.5 s to build), reused utterance after utterance."""

    def __init__(self) -> None:
        self.decoder = Decoder(Config(loglevel="FATAL", **DECODER_OPTIONS))
        self.open = False

    def start(self, cmn: str = "") -> None:
        """Open an utterance, normalised with the cepstral mean `cmn` (a stream's own, from
        `cmn()` after its last utterance; "" for CMN_INIT)."""
        if self.open:
            self.decoder.end_utt()
        self.decoder.set_cmn(cmn or CMN_INIT)
        self.decoder.start_utt()
        self.open = True

    def adapt(self) -> str:
        """Set the cepstral mean from the speech of the open utterance so far, and reopen it,
        empty, so that speech can be decoded again with it; the new mean. A first sentence
        normalised with CMN_INIT, or another voice's mean, loses words ("but china's us or
        open tomorrow"); decoded again after its first 1.5 s set the mean, it is heard about
        as well as with a whole-utterance mean (0.89 of the content words against 0.83, three
        flite voices through Chromium)."""
        self.decoder.get_cmn(True)  # update the mean from this utterance's audio
        self.decoder.end_utt()
        self.decoder.start_utt()
        return self.cmn()

    def cmn(self) -> str:
        """The cepstral mean as it stands (updated by each utterance's end)."""
        return str(self.decoder.get_cmn())

    def feed(self, pcm: bytes) -> str:
        """16 kHz mono 16-bit audio of the open utterance; the hypothesis so far."""
        self.decoder.process_raw(pcm, False, False)
        hyp = self.decoder.hyp()
        return str(hyp.hypstr).strip() if hyp is not None else ""

    def end(self, min_word_posterior: float = MIN_WORD_POSTERIOR) -> str:
        """Close the utterance: its text, or "" when nothing credible was heard."""
        self.decoder.end_utt()
        self.open = False
        return self.credible_text(min_word_posterior)

    def discard(self) -> None:
        if self.open:
            self.decoder.end_utt()
            self.open = False

    def recognize(self, pcm: bytes) -> str:
        """A whole utterance at once."""
        self.start(self.cmn())
        self.decoder.process_raw(pcm, False, True)
        return self.end()

    def credible_text(self, min_word_posterior: float) -> str:
        hyp = self.decoder.hyp()
        text = str(hyp.hypstr).strip() if hyp is not None else ""
        if not text or set(text.split()) <= FILLERS:
            return ""
        posteriors = [
            float(segment.prob) for segment in self.decoder.seg()
            if segment.word not in NON_WORDS and not segment.word.startswith(("[", "++"))
        ]
        confidence = sum(posteriors) / len(posteriors) if posteriors else 0.0
        return text if confidence >= min_word_posterior else ""


# ---- the child process: requests on stdin, answers on stdout --------------------------------
# A request is one byte (S start, A adapt, F feed, E end, D discard, C cepstral mean) and a
# length-prefixed payload (S: the cepstral mean, as text; F: audio; E: the minimum word
# posterior, as text); every answer is a length-prefixed text.
HEADER = struct.Struct("<cI")
LENGTH = struct.Struct("<I")


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    recognizer = Recognizer()
    reply(answers, "ready")
    while header := requests.read(HEADER.size):
        if len(header) < HEADER.size:
            break
        op, size = HEADER.unpack(header)
        payload = requests.read(size)
        if op == b"S":
            recognizer.start(payload.decode())
            reply(answers, "")
        elif op == b"A":
            reply(answers, recognizer.adapt())
        elif op == b"C":
            reply(answers, recognizer.cmn())
        elif op == b"F":
            reply(answers, recognizer.feed(payload))
        elif op == b"E":
            reply(answers, recognizer.end(float(payload.decode())))
        elif op == b"D":
            recognizer.discard()
            reply(answers, "")
        else:
            break


def reply(answers: BinaryIO, text: str) -> None:
    data = text.encode()
    answers.write(LENGTH.pack(len(data)) + data)
    answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
