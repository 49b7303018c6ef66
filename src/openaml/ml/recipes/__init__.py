"""Recipes: the JSON document that turns schema attributes into model input variables."""

from openaml.ml.recipes.default import default_recipe, pretty_json
from openaml.ml.recipes.nodes import Attr, Node, Op
from openaml.ml.recipes.recipe import MAX_OUTPUT_VARIABLES, MAX_RECIPE_LENGTH, Recipe, parse_recipe
from openaml.ml.recipes.syntax import RecipeError

__all__ = ["MAX_OUTPUT_VARIABLES", "MAX_RECIPE_LENGTH", "Attr", "Node", "Op", "Recipe", "RecipeError",
           "default_recipe", "parse_recipe", "pretty_json"]
