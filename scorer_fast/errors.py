"""The one error hierarchy. Services and domain code raise these; scorer_fast/api.py turns them into HTTP."""


class ScorerError(Exception):
    status_code = 400
    default_message = "Bad request."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class BadRequest(ScorerError):
    pass


class InvalidAddress(BadRequest):
    default_message = "Invalid address."


class InvalidScorerId(BadRequest):
    default_message = "Invalid scorer_id"


class Unauthorized(ScorerError):
    status_code = 401
    default_message = "Unauthorized"


class InvalidApiKey(Unauthorized):
    default_message = "Invalid API Key."


class NotFound(ScorerError):
    status_code = 404
    default_message = "Not Found"


class PayloadTooLarge(ScorerError):
    status_code = 413
    default_message = "Request body too large."


class TooManyStamps(ScorerError):
    status_code = 422
    default_message = "You have submitted too many stamps."


class MissingScorerId(ScorerError):
    status_code = 422
    default_message = "Invalid scorer_id. Please provide a valid scorer_id."


class RateLimited(ScorerError):
    status_code = 429
    default_message = "You have been rate limited!"


class ScoreCalculationFailed(ScorerError):
    status_code = 500
    default_message = "Failed to calculate score."


class DatabaseUnavailable(ScorerError):
    status_code = 503
    default_message = "Database unavailable."


class ScoringFailure(Exception):
    """Raised inside the pipeline; it is not an HTTP error: the score is saved in error state."""


class DatabaseBusy(ScorerError):
    status_code = 503
    default_message = "Database busy, please retry."
