"""One entry point from input files to :class:`Observations`: the perception pipeline.

``Perception.perceive(item)`` decodes each modality of an item (an image, a speech clip, a video
and/or text), runs the frozen encoders that modality needs, and returns one ``Observations``.
A bad modality never sinks the item: its error (naming the file and the reason) goes into
``Observations.errors`` and the other modalities still run. When every modality fails the item
carries only errors, and callers (batch job, data engine, UI) report it and go on.

Results are cached by file content (``FeatureCache``): the JSON-safe observations as metadata and
the feature tensors as safetensors, so the data engine, training and eval perceive each file once.
The cache holds content keys and features only, never a path: the stored copy has each input's
path replaced by a placeholder, and a hit is given the *current* item's paths, so a user who
sends the same bytes as another (or a batch row that repeats a file) never sees the other's path.

Then the evidence gate (``perception.gate``) drops channels without usable signal (no face,
silence, a tone, a 0.05 s clip, text without letters) with a warning in ``errors``, or leaves an
item with no channel and one error naming the reasons (``gate=False`` keeps everything, for
tools that show what the encoders saw). The item's text-cut warning is passed on the same way.

Deliberately not here: the perceivers themselves (``face``, ``audio``, ``vision``, ``video``) and
any prompting.
"""

from __future__ import annotations

import logging
import os
import threading

from affectllm.errors import InputError
from affectllm.io.files import replace_in_strings
from affectllm.io.item import Item
from affectllm.perception.observations import Observations, observation_tensors, observations_from_dict

log = logging.getLogger(__name__)

PIPELINE_VERSION = "2"  # bump when perception output changes, to invalidate cached observations
# Video items only (their key alone changes): "2" keeps VideoObs.timeline and face_frame_s.
VIDEO_VERSION = "2"


class Perception:
    """Lazily built frozen perceivers plus the observation cache.

    ``modalities`` selects what runs: ``face`` (detection, mesh, AUs, expression),
    ``audio`` (Whisper features, transcript, prosody), ``image`` (scene features for soft tokens;
    off by default because the default model reads faces, not scenes).
    """

    def __init__(self, modalities=("face", "audio"), whisper_name: str = "whisper-tiny.en",
                 vision_name: str = "efficientnet-lite0", use_cache: bool = True, cache_root=None,
                 transcribe: bool = True, voice_model="default", gate: bool = True):
        self.modalities = set(modalities)
        self.gate = gate  # run the evidence gate on every result (see module docstring)
        self.voice_model = voice_model  # AudioPerceiver's: "default", None (off) or a VoiceExpression
        # False: speech gets prosody and encoder features but no transcript (for sets whose
        # words carry no emotion by design, e.g. EmoDB, where ASR is most of the cost).
        self.transcribe = transcribe
        self.whisper_name = whisper_name
        self.vision_name = vision_name
        self.use_cache = use_cache
        self._cache_root = cache_root
        self._face = self._audio = self._vision = self._cache = None
        # MediaPipe graphs are not thread-safe; servers (gradio) call from several threads.
        self._lock = threading.RLock()

    # -- lazily built parts (each costs seconds to create, so it is created once) --------------
    @property
    def face(self):
        if self._face is None:
            from affectllm.perception.face import FacePerceiver

            self._face = FacePerceiver()
        return self._face

    @property
    def audio(self):
        if self._audio is None:
            from affectllm.perception.audio import AudioPerceiver

            self._audio = AudioPerceiver(whisper_name=self.whisper_name, voice_model=self.voice_model)
        return self._audio

    @property
    def vision(self):
        if self._vision is None:
            from affectllm.perception.vision import VisionEncoder

            self._vision = VisionEncoder(self.vision_name)
        return self._vision

    @property
    def cache(self):
        if self._cache is None:
            from affectllm.perception.cache import FeatureCache

            self._cache = FeatureCache(self._cache_root)
        return self._cache

    def _key(self, item: Item) -> str | None:
        from affectllm.io.files import sha256_bytes, sha256_file

        files = [f for f in (item.image, item.audio, item.video) if f]
        if not self.use_cache or not files:
            return None
        try:
            digest = "|".join(sha256_file(f) for f in files)
        except OSError:
            return None
        voice = self.audio.voice_model if "audio" in self.modalities else None
        conf = (f"{sorted(self.modalities)}|{self.whisper_name}|{self.vision_name}|{PIPELINE_VERSION}"
                f"|asr={self.transcribe}|voice={getattr(voice, 'digest', '') or voice is not None}"
                + (f"|video={VIDEO_VERSION}" if item.video else ""))
        return sha256_bytes(f"{digest}|{conf}".encode())

    # -- the work ---------------------------------------------------------------------------------
    def perceive(self, item: Item | str | os.PathLike, text: str | None = None) -> Observations:
        """Observations for one item; errors are collected per modality, never raised."""
        with self._lock:
            return self._perceive(item, text)

    def _perceive(self, item: Item | str | os.PathLike, text: str | None = None) -> Observations:
        if not isinstance(item, Item):
            try:
                item = Item.from_path(item, text=text)
            except InputError as e:
                return Observations(file=str(item), text=text, errors=[str(e)])
        obs = self._observe(item)
        if item.meta.get("text_warning"):
            obs.errors.append(item.meta["text_warning"])
        if not self.gate:
            return obs
        from affectllm.perception.gate import gate

        checked = gate(obs, item)
        out = checked.obs_kept
        out.errors = out.errors + (checked.warnings if checked.error is None else [checked.error])
        return out

    def _observe(self, item: Item) -> Observations:
        """Observations of ``item`` from the cache (given this item's paths) or the perceivers."""
        key = self._key(item)
        if key is not None:
            hit = self.cache.load(key)
            if hit is not None:
                tensors, meta = hit
                obs = observations_from_dict(_with_paths(meta, item), tensors)
                obs.file, obs.text = item.main_file, item.text
                return obs
        obs = Observations(file=item.main_file, text=item.text)
        for kind, fn in (("image", self._image), ("video", self._video), ("audio", self._audio_file)):
            path = getattr(item, kind)
            if not path:
                continue
            try:
                fn(path, obs)
            except InputError as e:
                obs.errors.append(str(e))
            except Exception as e:  # noqa: BLE001 - an encoder failure is this item's error, not the batch's
                log.exception("perception failed on %s", path)
                obs.errors.append(f"{path}: {kind} perception failed: {type(e).__name__}: {e}")
        if key is not None and not obs.errors:
            meta = obs.to_dict()
            # Text is not part of the key (it is re-attached on load), and paths never enter.
            meta["text"] = meta["file"] = None
            self.cache.save(key, observation_tensors(obs), _without_paths(meta, item))
        return obs

    def _image(self, path: str, obs: Observations) -> None:
        from affectllm.io import load_image

        rgb = load_image(path)
        if "face" in self.modalities:
            obs.faces = self.face.perceive(rgb, item=path)
        if "image" in self.modalities:
            obs.image = self.vision.perceive(rgb, item=path)

    def _audio_file(self, path: str, obs: Observations) -> None:
        if "audio" in self.modalities:
            obs.audio = self.audio.perceive(path, item=path, transcribe=self.transcribe)

    def _video(self, path: str, obs: Observations) -> None:
        from affectllm.perception.video import perceive_video

        result = perceive_video(path, face=self.face if "face" in self.modalities else False)
        obs.video = result.video
        if result.main_face is not None:
            obs.faces = [result.main_face]
        if "audio" in self.modalities:
            if result.audio is not None:
                obs.audio = self.audio.perceive(result.audio, item=path, transcribe=self.transcribe)
            else:
                obs.errors.append(f"{path}: video has no audio track (face evidence only)")


_SLOTS = ("image", "audio", "video")


def _without_paths(meta: dict, item: Item) -> dict:
    """The cache copy: each of the item's paths becomes a ``<kind>`` placeholder."""
    return replace_in_strings(meta, [(str(getattr(item, k)), f"<{k}>") for k in _SLOTS if getattr(item, k)])


def _with_paths(meta: dict, item: Item) -> dict:
    """A cache copy made this item's: the placeholders become its own paths."""
    return replace_in_strings(meta, [(f"<{k}>", str(getattr(item, k))) for k in _SLOTS if getattr(item, k)])
