"""Tags: AddTags, DeleteTags, DescribeTags (api-behavior.md §2.21)."""

from __future__ import annotations

import unicodedata
from typing import Any

from openaml.errors import (
    InvalidInputException,
    InvalidTagException,
    ResourceNotFoundException,
    TagLimitExceededException,
)
from openaml.service.context import RequestContext, ServiceContext
from openaml.store import EntityKind

MAX_TAGS_PER_REQUEST = 100
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _tag_text_ok(text: str) -> bool:
    """`^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$`: Unicode letters, separators, digits and _.:/=+-@."""
    return all(
        ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN" for ch in text
    )


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidTagException("A tag needs a Key of 1 to 128 characters")
    if len(key) > 128:
        raise InvalidTagException(f"Tag key '{key[:40]}...' is longer than 128 characters")
    if not _tag_text_ok(key):
        raise InvalidTagException(
            f"Tag key '{key}' may hold only letters, digits, spaces and _ . : / = + - @"
        )
    if key.lower().startswith("aws:"):
        raise InvalidTagException(f"Tag key '{key}' uses the reserved prefix 'aws:'")
    return key


def _check_value(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if len(value) > 256:
        raise InvalidTagException(f"The value of tag '{key}' is longer than 256 characters")
    if not _tag_text_ok(value):
        raise InvalidTagException(
            f"The value of tag '{key}' may hold only letters, digits, spaces and _ . : / = + - @"
        )
    return str(value)


class TagOperations:
    ctx: ServiceContext

    def _resource(self, resource_id: str, resource_type: str) -> EntityKind:
        """The resource's kind, once it is known to exist (in any status, DELETED included)."""
        kind = EntityKind(resource_type)
        if self.ctx.store.status(kind, resource_id) is None:  # not the whole row: info is large
            raise ResourceNotFoundException(f"No {kind.value} with id {resource_id} exists")
        return kind

    def add_tags(self, context: RequestContext,
                 Tags: list[dict[str, Any]], ResourceId: str, ResourceType: str) -> dict[str, Any]:
        kind = self._resource(ResourceId, ResourceType)
        if len(Tags) > MAX_TAGS_PER_REQUEST:
            raise InvalidInputException(f"At most {MAX_TAGS_PER_REQUEST} tags per request")
        new: dict[str, str | None] = {}
        for tag in Tags:
            key = _check_key(tag.get("Key"))
            new[key] = _check_value(key, tag.get("Value"))
        limit = self.ctx.settings.tag_limit
        if not self.ctx.store.put_tags(kind, ResourceId, new, limit):
            raise TagLimitExceededException(
                f"{kind.value} {ResourceId} would have more than {limit} tags"
            )
        return {"ResourceId": ResourceId, "ResourceType": ResourceType}

    def delete_tags(self, context: RequestContext,
                    TagKeys: list[str], ResourceId: str, ResourceType: str) -> dict[str, Any]:
        kind = self._resource(ResourceId, ResourceType)
        if len(TagKeys) > MAX_TAGS_PER_REQUEST:
            raise InvalidInputException(f"At most {MAX_TAGS_PER_REQUEST} tag keys per request")
        keys = [_check_key(k) for k in TagKeys]
        self.ctx.store.delete_tags(kind, ResourceId, keys)
        return {"ResourceId": ResourceId, "ResourceType": ResourceType}

    def describe_tags(self, context: RequestContext, ResourceId: str, ResourceType: str) -> dict[str, Any]:
        kind = self._resource(ResourceId, ResourceType)
        tags = [
            {"Key": k} if v is None else {"Key": k, "Value": v}
            for k, v in self.ctx.store.get_tags(kind, ResourceId)
        ]
        return {"ResourceId": ResourceId, "ResourceType": ResourceType, "Tags": tags}
