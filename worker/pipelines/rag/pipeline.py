"""The ``rag`` pipeline: the eight steps of docs/api.md, each a real stage with its own metadata.

start, context (history within a token budget), analyzing (intent, follow-up rewrite), planning,
validation (the project is readable and not empty), execution (retrieval, then the streamed
answer), memory (session summary, project memory), completion. Between steps and between tokens
it stops at ``run.checkpoint()``, where cancellation is delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared import tracing
from shared.events import FINISH_STOP
from shared.knowledge import Bm25Retriever, Retriever, knowledge_store
from shared.names import Names
from shared.redis_client import RedisClient
from shared.settings import RagSettings
from worker.job_run import JobRun
from worker.pipelines import PipelineResult
from worker.pipelines.rag.analysis import Analysis, analyze
from worker.pipelines.rag.context import Context, HistoryReader, NoHistory, fit_history
from worker.pipelines.rag.generators import (
    GenerationRequest,
    GenerationResult,
    Generator,
    Passage,
    emit_words,
)
from worker.pipelines.rag.generators.extractive import ExtractiveGenerator
from worker.pipelines.rag.generators.openai import OpenAIGenerator
from worker.pipelines.rag.generators.small_talk import SmallTalkGenerator
from worker.pipelines.rag.memory import read_summary, remember
from worker.pipelines.rag.planning import SMALL_TALK, Plan, make_plan
from worker.pipelines.rag.validation import Validation, validate_plan


def default_generators(settings: RagSettings) -> dict[str, Generator]:
    generators: dict[str, Generator] = {
        "extractive": ExtractiveGenerator(),
        SMALL_TALK: SmallTalkGenerator(),
    }
    if settings.generator == "openai":
        generators["openai"] = OpenAIGenerator.from_settings(settings)
    return generators


def no_sources_answer(project: str, reason: str) -> str:
    return f"I have no sources to answer from: {reason} ({project})."


class RagPipeline:
    def __init__(
        self,
        settings: RagSettings,
        redis: RedisClient,
        names: Names,
        *,
        history: HistoryReader | None = None,
        retriever: Retriever | None = None,
        generators: Mapping[str, Generator] | None = None,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._names = names
        self._store = knowledge_store(redis, names, settings)
        self._history = history or NoHistory()
        self._retriever = retriever or Bm25Retriever(self._store)
        self._generators = dict(generators or default_generators(settings))

    async def run(self, run: JobRun) -> PipelineResult:
        job = run.job
        project = str(job.options.get("project") or self._settings.default_project)
        simple = bool(job.options.get("simple_language", False))
        await run.progress(
            "start",
            "Starting",
            metadata={"pipeline": "rag", "project": project, "simpleLanguage": simple},
        )
        await run.checkpoint()

        context = await self._context(run)
        await run.checkpoint()

        analysis = analyze(job.text, context.turns)
        await run.progress(
            "analyzing",
            "Reading the message",
            details=f"intent: {analysis.intent}",
            metadata={
                "intent": analysis.intent,
                "query": analysis.query,
                "rewritten": analysis.rewritten,
                "previousQuestion": analysis.previous_question,
            },
        )
        await run.checkpoint()

        plan = make_plan(
            analysis,
            project=project,
            top_k=self._settings.top_k,
            generator=self._settings.generator,
            simple_language=simple,
        )
        await run.progress("planning", "Planning the answer", metadata=plan.metadata())
        await run.checkpoint()

        validation = await validate_plan(
            plan,
            redis=self._redis,
            names=self._names,
            store=self._store,
            user_id=job.user_id,
            public_projects=self._settings.public_projects,
        )
        await run.progress(
            "validation",
            "Checking the plan",
            details=validation.reason,
            metadata={
                "feasible": validation.ok,
                "reason": validation.reason,
                "chunks": validation.chunks,
                "indexVersion": validation.index_version,
                "generator": validation.generator,
            },
        )
        await run.checkpoint()

        result = await self._execute(run, analysis, context, plan, validation)
        await run.checkpoint()

        update = await remember(
            self._redis,
            self._names,
            session_id=job.session_id,
            message_id=job.message_id,
            project=project if plan.retrieve and validation.ok else None,
            question=job.text,
            query=analysis.query,
            citations=result.citations,
            project_items=self._settings.project_memory_items,
        )
        await run.progress(
            "memory",
            "Saving what was learned",
            metadata={
                "sessionSummaryChars": update.summary_chars,
                "projectMemoryItems": update.project_items,
            },
        )
        await run.checkpoint()
        await run.progress(
            "completion",
            "Done",
            metadata={
                "citations": len(result.citations),
                "tokens": run.tokens,
                "finishReason": result.finish_reason,
            },
        )
        return PipelineResult(result.finish_reason, result.citations)

    async def _context(self, run: JobRun) -> Context:
        history = await self._history.recent(run.job.session_id, self._settings.history_messages)
        summary = await read_summary(self._redis, self._names, run.job.session_id)
        context = fit_history(history, self._settings.context_token_budget, summary)
        await run.progress(
            "context",
            "Loading the conversation",
            metadata={
                "messages": len(context.turns),
                "dropped": context.dropped,
                "tokens": context.tokens,
                "tokenBudget": self._settings.context_token_budget,
                "summary": bool(context.summary),
            },
        )
        return context

    async def _execute(
        self,
        run: JobRun,
        analysis: Analysis,
        context: Context,
        plan: Plan,
        validation: Validation,
    ) -> GenerationResult:
        async def emit(text: str) -> None:
            await run.checkpoint()
            await run.token(text)

        if not validation.ok:
            await run.progress(
                "execution",
                "Writing the answer",
                details="no sources",
                metadata={"retrieved": [], "generator": "none"},
            )
            with run.generating("none"):
                await emit_words(no_sources_answer(plan.project, validation.reason), emit)
            return GenerationResult(FINISH_STOP, [])
        passages: list[Passage] = []
        metadata: dict[str, Any] = {"generator": validation.generator}
        if plan.retrieve:
            with tracing.span(
                "retrieval", {"chatstream.project": plan.project, "chatstream.top_k": plan.top_k}
            ) as retrieval:
                found = await self._retriever.search(plan.project, analysis.query, plan.top_k)
                if retrieval is not None:
                    retrieval.set_attribute("chatstream.retrieved", len(found.hits))
            passages = [
                Passage(n, plan.project, hit.chunk, hit.score)
                for n, hit in enumerate(found.hits, start=1)
            ]
            metadata |= {
                "indexVersion": found.index_version,
                "chunksSearched": found.chunks_searched,
                "retrieved": [
                    {
                        "id": p.number,
                        "document": p.chunk.document,
                        "chunkId": p.chunk.id,
                        "score": round(p.score, 4),
                    }
                    for p in passages
                ],
            }
        await run.progress(
            "execution",
            "Writing the answer",
            details=f"{len(passages)} passages, {validation.generator} generator",
            metadata=metadata,
        )
        request = GenerationRequest(
            question=run.job.text,
            query=analysis.query,
            passages=passages,
            history=context.turns,
            simple_language=plan.simple_language,
        )
        with run.generating(validation.generator):
            return await self._generators[validation.generator].generate(
                request, emit, run.checkpoint
            )
