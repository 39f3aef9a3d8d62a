"""smart-turn v3.2 (pipecat-ai, BSD-2): how likely a person has finished their turn, from the
last 8 s of their audio (words and intonation), in tens of milliseconds on one CPU thread.

The 8.7 MB .onnx ships inside the pipecat-ai wheel; `./dev.sh setup` extracts it (checked
by its SHA-256) to VOICE_TURN_MODEL_PATH, so nothing is downloaded while a session runs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.voice.agent.turn.features import last_window, log_mel_features

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"


class TurnModelMissing(RuntimeError):
    """The model file is not where the settings say; the message says how to get it."""


class SmartTurnModel:
    """One onnxruntime session on one thread; `probability` may be called from any thread."""

    def __init__(self, path: Path | str) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise TurnModelMissing(
                f"the end-of-turn model {path} is missing: run `./dev.sh setup` (it extracts "
                f"{MODEL_FILE} from the pipecat-ai wheel), point VOICE_TURN_MODEL_PATH at it, "
                "or set VOICE_TURN_DETECTION=vad"
            )
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session: Any = ort.InferenceSession(str(path), sess_options=options)
        self._lock = threading.Lock()

    def probability(self, audio: np.ndarray) -> float:
        """P(turn complete) for the turn's audio so far (16 kHz mono, int16 or float)."""
        features = log_mel_features(last_window(audio))[None, :, :]
        with self._lock:
            outputs = self._session.run(None, {"input_features": features})
        # The output is named logits but is already a sigmoid.
        return float(np.asarray(outputs[0]).reshape(-1)[0])
