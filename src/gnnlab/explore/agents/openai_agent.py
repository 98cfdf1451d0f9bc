"""``openai``: any OpenAI-compatible chat-completions endpoint through the ``openai`` SDK.

Local servers (Ollama, llama.cpp, vLLM) work through ``llm.base_url`` (which overrides ``OPENAI_BASE_URL``).
With ``llm.json_schema: true`` the reply is constrained by a JSON-schema ``response_format``; servers without
it get the schema in the prompt and the reply is validated like any other. The key comes from
``OPENAI_API_KEY`` only (a local server accepts any non-empty value).
"""

import base64
from pathlib import Path
from typing import Any

from gnnlab.config.explore import LLM
from gnnlab.explore.agents.llm import SCHEMA, LLMAgent, LLMError, Prompt, Reply, api_key


class OpenAIAgent(LLMAgent):
    name = "openai"

    def __init__(self, settings: LLM, workspace: Path, budget_usd: float | None = None):
        import openai

        super().__init__(settings, workspace, budget_usd)
        self._sdk = openai
        options: dict[str, Any] = {"base_url": settings.base_url} if settings.base_url else {}
        self.client = openai.OpenAI(
            api_key=api_key("OPENAI_API_KEY"),
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
            **options,
        )

    def _call(self, prompt: Prompt) -> Reply:
        content: str | list[dict[str, Any]] = prompt.user
        if prompt.images:
            content = [{"type": "text", "text": prompt.user}] + [
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "data:image/png;base64," + base64.b64encode(self.image_bytes(p)).decode()
                    },
                }
                for p in prompt.images
            ]
        options: dict[str, Any] = {}
        if self.settings.json_schema:
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "proposals", "schema": SCHEMA},
            }
        try:
            completion = self.client.chat.completions.create(
                model=self.settings.model,
                max_tokens=self.settings.max_tokens,
                messages=[
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": content},
                ],
                **options,
            )
        except self._sdk.APITimeoutError:
            raise LLMError(f"timed out after {self.settings.timeout_s:g} s") from None
        except self._sdk.APIError as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}") from None
        if not completion.choices:
            raise LLMError("the reply has no choices")
        usage = completion.usage
        return Reply(
            text=completion.choices[0].message.content,
            data=None,
            model=completion.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )


__all__ = ["OpenAIAgent"]
