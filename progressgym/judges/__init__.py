"""The built-in challenges, all registered here (the judge modules are imported only when used).

========================  ==========================================================================
``Follow-v0``             keep up with the present century's values
``Predict-v0``            learn from the present, be scored against ``timesteps_ahead`` centuries later
``Coevolve-v1``           coevolve with a simulated humanity that the examinee's answers influence
========================  ==========================================================================
"""

from __future__ import annotations

from progressgym.registration import register_challenge

register_challenge(
    "Follow-v0",
    "progressgym.judges.follow:FollowJudge",
    description="keep up with the values of the present century (score: mean cosine to M_t)",
)
register_challenge(
    "Predict-v0",
    "progressgym.judges.predict:PredictJudge",
    kwargs={"timesteps_ahead": 1},
    description="learn from the present, be scored k centuries ahead (score: mean cosine to M_{t+k})",
)
register_challenge(
    "Coevolve-v1",
    "progressgym.judges.coevolve:CoevolveJudge",
    description="coevolve with a simulated human proxy the examinee influences (score: suffix-max cosine)",
)
