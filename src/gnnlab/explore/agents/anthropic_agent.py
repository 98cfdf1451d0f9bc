"""``anthropic``: the Messages API through the ``anthropic`` SDK.

The proposal is a forced tool call whose ``input_schema`` is :class:`ProposalReply`'s JSON schema, so the
model cannot answer in another shape; the latest plots go along as base64 image blocks; the system block
(instructions and protocol, unchanged within a block) carries ``cache_control`` so repeated rounds read it
from the prompt cache. The key comes from ``ANTHROPIC_API_KEY`` only; ``llm.base_url`` overrides
``ANTHROPIC_BASE_URL``.
"""

import base64
from pathlib import Path
from typing import Any

from gnnlab.config.explore import LLM
from gnnlab.explore.agents.llm import SCHEMA, LLMAgent, LLMError, Prompt, Reply, api_key

TOOL = "propose"


class AnthropicAgent(LLMAgent):
    name = "anthropic"

    def __init__(self, settings: LLM, workspace: Path, budget_usd: float | None = None):
        import anthropic

        super().__init__(settings, workspace, budget_usd)
        self._sdk = anthropic
        options: dict[str, Any] = {"base_url": settings.base_url} if settings.base_url else {}
        self.client = anthropic.Anthropic(
            api_key=api_key("ANTHROPIC_API_KEY"),
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
            **options,
        )

    def _call(self, prompt: Prompt) -> Reply:
        images = [
            {
                "type": "image",
                "source": {
                    "type": "base64",
                    "media_type": "image/png",
                    "data": base64.b64encode(self.image_bytes(path)).decode(),
                },
            }
            for path in prompt.images
        ]
        try:
            message = self.client.messages.create(
                model=self.settings.model,
                max_tokens=self.settings.max_tokens,
                system=[{"type": "text", "text": prompt.system, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": [*images, {"type": "text", "text": prompt.user}]}],
                tools=[
                    {
                        "name": TOOL,
                        "description": "Submit one proposal per requested iteration.",
                        "input_schema": SCHEMA,
                    }
                ],
                tool_choice={"type": "tool", "name": TOOL},
            )
        except self._sdk.APITimeoutError:
            raise LLMError(f"timed out after {self.settings.timeout_s:g} s") from None
        except self._sdk.APIError as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}") from None
        usage = message.usage
        cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
        tool = next((b for b in message.content if b.type == "tool_use" and b.name == TOOL), None)
        text = "".join(b.text for b in message.content if b.type == "text") or None
        return Reply(
            text=text,
            data=dict(tool.input) if tool is not None else None,
            model=message.model,
            input_tokens=usage.input_tokens + cached,
            output_tokens=usage.output_tokens,
        )


__all__ = ["AnthropicAgent"]
