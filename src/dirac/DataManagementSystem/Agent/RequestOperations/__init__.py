"""Operation handlers of data operations (DIRAC's names): run by the RequestExecutingAgent as the request's owner."""
