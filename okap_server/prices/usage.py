"""What one answer says it used, in the units providers bill: tokens by kind and modality,
and the web searches a hosted tool ran.

Providers bill audio, image and video tokens, one-hour cache writes and web searches at
their own rates (an image output token of ``gemini-3-pro-image-preview`` costs ten times a
text one), so a count per rate is kept; ``genai_prices`` prices each (see
``okap_server.prices.price``). The settlement journal stores these counts by position
(``Usage.counts``): a new count is appended at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Usage:
    """Counts of one request. ``input_tokens`` includes cached and cache-write tokens and
    every modality's; ``output_tokens`` every modality's. A modality's input count includes
    its cached tokens (``cached_audio_tokens`` are part of ``input_audio_tokens`` and of
    ``cached_tokens``); ``cache_write_1h_tokens`` are part of ``cache_write_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    input_video_tokens: int = 0
    cached_audio_tokens: int = 0
    cached_image_tokens: int = 0
    cached_video_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_audio_tokens: int = 0
    output_image_tokens: int = 0
    output_video_tokens: int = 0
    web_searches: int = 0

    def counts(self) -> tuple[int, ...]:
        """Every count, in field order (the journal's record shape)."""
        return (
            self.input_tokens,
            self.output_tokens,
            self.cached_tokens,
            self.cache_write_tokens,
            *self.extra_counts(),
        )

    def extra_counts(self) -> tuple[int, ...]:
        """The counts beyond plain text tokens, in field order."""
        return (
            self.input_audio_tokens,
            self.input_image_tokens,
            self.input_video_tokens,
            self.cached_audio_tokens,
            self.cached_image_tokens,
            self.cached_video_tokens,
            self.cache_write_1h_tokens,
            self.output_audio_tokens,
            self.output_image_tokens,
            self.output_video_tokens,
            self.web_searches,
        )

    @property
    def plain(self) -> bool:
        """Text tokens only: the common case, priced without the library's general path."""
        return not any(self.extra_counts())

    @classmethod
    def from_counts(cls, values: list[int] | tuple[int, ...]) -> Usage:
        """The usage of a journal record: a shorter list (an older record) leaves the later
        counts at zero, a longer one (a newer vault's) drops what this one does not know."""
        return cls(*values[: len(USAGE_FIELDS)])

    def merged(self, other: Usage) -> Usage:
        """Later stream events refine earlier ones: keep the larger figure of each."""
        return Usage(*map(max, self.counts(), other.counts()))

    def consistent(self) -> Usage:
        """The counts made to add up, as ``genai_prices`` requires (settlement must not
        fail on a provider's odd report). Where cached and media tokens together exceed the
        input, the overlap is cached media tokens the report did not split out (OpenAI's
        chat counts cached and audio tokens apart); any other shortfall raises the total to
        the sum of its parts. A count is never lowered: the vault charges more, not less."""
        media = [
            max(self.input_audio_tokens, self.cached_audio_tokens),
            max(self.input_image_tokens, self.cached_image_tokens),
            max(self.input_video_tokens, self.cached_video_tokens),
        ]
        cached_media = [self.cached_audio_tokens, self.cached_image_tokens]
        cached_media.append(self.cached_video_tokens)
        cached = max(self.cached_tokens, sum(cached_media))
        written = max(self.cache_write_tokens, self.cache_write_1h_tokens)
        overlap = cached + written + sum(media) - sum(cached_media) - self.input_tokens
        for i in range(3):
            # Unsplit cached tokens that can be this modality's: count them as such.
            moved = min(max(overlap, 0), media[i] - cached_media[i], cached - sum(cached_media))
            cached_media[i] += moved
            overlap -= moved
        return Usage(
            input_tokens=self.input_tokens + max(overlap, 0),
            output_tokens=max(
                self.output_tokens,
                self.output_audio_tokens + self.output_image_tokens + self.output_video_tokens,
            ),
            cached_tokens=cached,
            cache_write_tokens=written,
            input_audio_tokens=media[0],
            input_image_tokens=media[1],
            input_video_tokens=media[2],
            cached_audio_tokens=cached_media[0],
            cached_image_tokens=cached_media[1],
            cached_video_tokens=cached_media[2],
            cache_write_1h_tokens=self.cache_write_1h_tokens,
            output_audio_tokens=self.output_audio_tokens,
            output_image_tokens=self.output_image_tokens,
            output_video_tokens=self.output_video_tokens,
            web_searches=self.web_searches,
        )


USAGE_FIELDS: tuple[str, ...] = tuple(Usage.__dataclass_fields__)

# Google's and OpenAI's modality names, lower-cased, to the fields counting each (input,
# cached input, output); text and documents are plain tokens.
MODALITY_FIELDS: MappingProxyType[str, tuple[str, str, str]] = MappingProxyType(
    {
        "audio": ("input_audio_tokens", "cached_audio_tokens", "output_audio_tokens"),
        "image": ("input_image_tokens", "cached_image_tokens", "output_image_tokens"),
        "video": ("input_video_tokens", "cached_video_tokens", "output_video_tokens"),
    }
)
