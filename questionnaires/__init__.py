"""Questionnaires: schema, validation, scoring, XLSForm, rendering and the bundled instruments.

Imports nothing of ``survey`` or ``analysis``. The public API is exactly ``__all__``::

    q = load("core.yaml")                      # validated Questionnaire, or QuestionnaireError
    library = load_library()                   # bundled instruments by id
    scores = score(q, answers_frame)           # score_<item>, index, satisfied per response
    html = render_form(q, "fa", answers={...}) # the web answering page
    text = sms_prompt(q, "q_overall", "fa")    # one SMS question
    read = parse_form(q, form_fields, "fa", final=True)  # answers + messages for render_form
"""

from questionnaires.answers import FormAnswers, parse_answer, parse_form
from questionnaires.conditions import NOT_APPLICABLE, Condition, Op
from questionnaires.errors import PROBLEM_CODES, AnswerError, Problem, QuestionnaireError
from questionnaires.loading import (
    dumps_yaml,
    library_path,
    load,
    load_folder,
    load_library,
    loads_json,
    loads_yaml,
)
from questionnaires.rendering import render_form, sms_prompt
from questionnaires.schema import (
    LANGUAGES,
    NO,
    YES,
    Choice,
    Ends,
    IndexItem,
    Item,
    ItemType,
    Questionnaire,
    Scoring,
    Text,
)
from questionnaires.scoring import item_scores, score, score_response
from questionnaires.xlsform import read_xlsform, write_xlsform

__all__ = [
    "LANGUAGES",
    "NO",
    "NOT_APPLICABLE",
    "PROBLEM_CODES",
    "YES",
    "AnswerError",
    "Choice",
    "Condition",
    "Ends",
    "FormAnswers",
    "IndexItem",
    "Item",
    "ItemType",
    "Op",
    "Problem",
    "Questionnaire",
    "QuestionnaireError",
    "Scoring",
    "Text",
    "dumps_yaml",
    "item_scores",
    "library_path",
    "load",
    "load_folder",
    "load_library",
    "loads_json",
    "loads_yaml",
    "parse_answer",
    "parse_form",
    "read_xlsform",
    "render_form",
    "score",
    "score_response",
    "sms_prompt",
    "write_xlsform",
]
