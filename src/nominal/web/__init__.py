"""The web app: FastAPI JSON API and server-rendered GOV.UK Design System pages."""
