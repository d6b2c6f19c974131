"""The knowledge store on the real Redis: replacing by name, deleting, and the index version."""

from __future__ import annotations

import asyncio

from shared.knowledge import KnowledgeStore


async def test_uploads_of_one_name_racing_leave_one_document_and_its_chunks(
    store: KnowledgeStore,
) -> None:
    await asyncio.gather(
        *(
            store.add_document("p", "same.md", f"Version {i} of the text.", "markdown")
            for i in range(5)
        )
    )
    documents = await store.documents("p")
    assert len(documents) == 1
    snapshot = await store.snapshot("p")
    assert [c.document_id for c in snapshot.chunks] == [documents[0].id]
    assert snapshot.version == 5


async def test_every_change_moves_the_index_version(store: KnowledgeStore) -> None:
    assert await store.index_version("p") == 0
    first = await store.add_document("p", "a.txt", "Alpha text.", "text")
    second = await store.add_document("p", "b.txt", "Beta text.", "text")
    assert await store.index_version("p") == 2
    assert await store.delete_document("p", first.id)
    assert not await store.delete_document("p", first.id)
    snapshot = await store.snapshot("p")
    assert snapshot.version == 3
    assert [c.document_id for c in snapshot.chunks] == [second.id]
    assert await store.chunk_count("p") == 1
