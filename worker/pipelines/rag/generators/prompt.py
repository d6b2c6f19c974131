"""The chat messages an OpenAI-compatible model is given: the numbered passages, the history,
and the simple-language instruction."""

from __future__ import annotations

from worker.pipelines.rag.generators import GenerationRequest

SYSTEM = (
    "You answer questions about a collection of documents. Use only the numbered sources "
    "below. After each sentence that uses a source, cite it as [n]. If the sources do not "
    "answer the question, say so."
)
SIMPLE_LANGUAGE = "Write in simple language: short sentences, common words, a short answer."


def build_messages(request: GenerationRequest) -> list[dict[str, str]]:
    sources = "\n\n".join(
        f"[{p.number}] ({p.chunk.document})\n{p.chunk.text}" for p in request.passages
    )
    system = SYSTEM + (f"\n\n{SIMPLE_LANGUAGE}" if request.simple_language else "")
    messages = [{"role": "system", "content": f"{system}\n\nSources:\n{sources}"}]
    messages += [
        {"role": turn.role, "content": turn.content}
        for turn in request.history
        if turn.role in ("user", "assistant")
    ]
    messages.append({"role": "user", "content": request.question})
    return messages
