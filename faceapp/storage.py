"""The one way the app opens its enrollment store: :func:`open_store`.

It hands the :class:`~faceapp.store.repository.Store` what the store itself must not look up
(the store sits below the models): the installed embedding models' sizes, so that every write
and every gallery import refuses an embedding or a face that no installed model could have
made. The site key comes from the default key file (docs/security.md).
"""

from __future__ import annotations

from faceapp.embed.weights import available_specs
from faceapp.store.repository import ModelFacts, Store


def model_facts() -> dict[str, ModelFacts]:
    """Embedding size and aligned-face size of every installed model, by model id."""
    return {
        model_id: ModelFacts(embedding_dim=spec.embedding_dim, input_size=spec.input_size)
        for model_id, spec in available_specs().items()
    }


def open_store(url: str) -> Store:
    """The store at ``url`` (a SQLAlchemy URL), checking writes against the installed models."""
    return Store(url, models=model_facts())
