"""The TRIPOD+AI checklist, filled from a run: for each item, where the report answers it, or why not.

TRIPOD+AI: Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for
reporting clinical prediction models that use regression or machine learning methods. BMJ
2024;385:e078378 (27 items; the wording below is a short paraphrase, see the paper for the full
text). A run knows its data, methods and results; it cannot know the study's context, ethics,
funding or interpretation, and says so ("not reported": the authors must add it) instead of
pretending. Items that do not apply to this kind of study say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

CHECKLIST_NAME = "TRIPOD+AI (Collins et al., BMJ 2024;385:e078378)"
ANSWERED = "answered"
PARTLY = "partly"
NOT_REPORTED = "not reported"
NOT_APPLICABLE = "not applicable"
STATUSES = (ANSWERED, PARTLY, NOT_REPORTED, NOT_APPLICABLE)
CHECKLIST_COLUMNS = ["item", "topic", "asks", "status", "where", "note"]


@dataclass(frozen=True)
class ChecklistItem:
    """One TRIPOD+AI item.

    Args:
        item: its number, e.g. ``"12c"``.
        topic: its topic, e.g. ``"Analytical methods"``.
        asks: what it asks for, in short.
    """

    item: str
    topic: str
    asks: str


TRIPOD_AI_ITEMS: tuple[ChecklistItem, ...] = (
    ChecklistItem("1", "Title", "the study as developing or evaluating a prediction model, the population, the outcome"),
    ChecklistItem("2", "Abstract", "a structured summary (TRIPOD+AI for Abstracts)"),
    ChecklistItem("3a", "Background", "the healthcare context and rationale; existing models"),
    ChecklistItem("3b", "Background", "the target population and the model's intended purpose and users"),
    ChecklistItem("3c", "Background", "known health inequalities between sociodemographic groups"),
    ChecklistItem("4", "Objectives", "the objectives: development, evaluation or both"),
    ChecklistItem("5a", "Data", "the data sources, why they were used, how representative they are"),
    ChecklistItem("5b", "Data", "the dates of the data (start and end of accrual)"),
    ChecklistItem("6a", "Participants", "the setting and the number and location of centres"),
    ChecklistItem("6b", "Participants", "eligibility criteria"),
    ChecklistItem("6c", "Participants", "treatments received and how they were handled"),
    ChecklistItem("7", "Data preparation", "pre-processing and quality checks of the data"),
    ChecklistItem("8a", "Outcome", "the outcome, how and when it was assessed"),
    ChecklistItem("8b", "Outcome", "qualifications of outcome assessors when assessment is subjective"),
    ChecklistItem("8c", "Outcome", "blinding of outcome assessment"),
    ChecklistItem("9a", "Predictors", "how the initial predictors were chosen, and any pre-selection"),
    ChecklistItem("9b", "Predictors", "definition of every predictor, how and when it was measured"),
    ChecklistItem("9c", "Predictors", "qualifications of predictor assessors when measurement is subjective"),
    ChecklistItem("10", "Sample size", "how the study size was arrived at, and whether it suffices"),
    ChecklistItem("11", "Missing data", "how missing data were handled; reasons for omitting data"),
    ChecklistItem("12a", "Analytical methods", "how the data were used (development, evaluation, partitioning)"),
    ChecklistItem("12b", "Analytical methods", "how predictors were handled (transformation, standardisation)"),
    ChecklistItem("12c", "Analytical methods", "the model type, every building step, tuning, internal validation"),
    ChecklistItem("12d", "Analytical methods", "heterogeneity of estimates and performance across clusters"),
    ChecklistItem("12e", "Analytical methods", "performance measures and plots (discrimination, calibration, "
                                               "clinical utility) and model comparisons"),
    ChecklistItem("12f", "Analytical methods", "any model updating (e.g. recalibration) after evaluation"),
    ChecklistItem("12g", "Analytical methods", "how predictions were calculated in the evaluation"),
    ChecklistItem("13", "Class imbalance", "class imbalance methods, why, and any recalibration after them"),
    ChecklistItem("14", "Fairness", "approaches used to address model fairness"),
    ChecklistItem("15", "Model output", "the model's output and how any classification threshold was set"),
    ChecklistItem("16", "Training versus evaluation", "differences between development and evaluation data"),
    ChecklistItem("17", "Ethical approval", "the ethics committee and consent"),
    ChecklistItem("18a", "Open science", "funding"),
    ChecklistItem("18b", "Open science", "conflicts of interest"),
    ChecklistItem("18c", "Open science", "where the protocol can be accessed"),
    ChecklistItem("18d", "Open science", "registration"),
    ChecklistItem("18e", "Open science", "availability of the study data"),
    ChecklistItem("18f", "Open science", "availability of the analytical code"),
    ChecklistItem("19", "Patient and public involvement", "any patient and public involvement"),
    ChecklistItem("20a", "Participants", "the flow of participants, with and without the outcome"),
    ChecklistItem("20b", "Participants", "participant characteristics (Table 1), missing data"),
    ChecklistItem("20c", "Participants", "for evaluation, predictor distributions compared with development"),
    ChecklistItem("21", "Model development", "participants and outcome events in each analysis"),
    ChecklistItem("22", "Model specification", "the full model, so that others can make predictions"),
    ChecklistItem("23a", "Model performance", "performance with confidence intervals, also in key subgroups"),
    ChecklistItem("23b", "Model performance", "heterogeneity of performance across clusters"),
    ChecklistItem("24", "Model updating", "results of any model updating"),
    ChecklistItem("25", "Interpretation", "overall interpretation, fairness, previous studies"),
    ChecklistItem("26", "Limitations", "limitations: sample, size, overfitting, missing data"),
    ChecklistItem("27a", "Usability", "how poor-quality or missing input data are handled in use"),
    ChecklistItem("27b", "Usability", "whether users interact with input handling, and the expertise needed"),
    ChecklistItem("27c", "Usability", "next steps for research, applicability and generalisability"),
)


@dataclass(frozen=True)
class ChecklistAnswer:
    """How a run answers one item.

    Args:
        status: one of `STATUSES`.
        where: the report section answering it (its anchor), or empty.
        note: what the report says there, or why it does not answer.
    """

    status: str
    where: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"checklist status {self.status!r} is not one of {STATUSES}")


def fill_checklist(answers: Mapping[str, ChecklistAnswer]) -> pd.DataFrame:
    """The checklist as a table, every item present: one without an answer is "not reported".

    Args:
        answers: by item number.

    Returns:
        Rows of `CHECKLIST_COLUMNS` in checklist order; `where` is ``#anchor`` of a report section.

    Raises:
        ValueError: for an answer to an item TRIPOD+AI does not have.
    """
    known = {item.item for item in TRIPOD_AI_ITEMS}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise ValueError(f"no TRIPOD+AI item {unknown}")
    rows = []
    for item in TRIPOD_AI_ITEMS:
        answer = answers.get(item.item, ChecklistAnswer(NOT_REPORTED, note="the run cannot know this; the authors "
                                                                           "must report it"))
        rows.append({"item": item.item, "topic": item.topic, "asks": item.asks, "status": answer.status,
                     "where": f"#{answer.where}" if answer.where else "", "note": answer.note})
    return pd.DataFrame(rows, columns=CHECKLIST_COLUMNS)
