"""Tags: AddTags, DeleteTags, DescribeTags (api-behavior.md §2.21)."""

from __future__ import annotations

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


def _check_key(key: str) -> str:
    """The key's length and characters were checked against the TagKey shape (protocol/parse.py,
    for the API and the console alike); the reserved prefix is the service's rule."""
    if key.lower().startswith("aws:"):
        raise InvalidTagException(f"Tag key '{key}' uses the reserved prefix 'aws:'")
    return key


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
            new[_check_key(tag["Key"])] = tag.get("Value")  # a Tag without Key: refused by the protocol
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
