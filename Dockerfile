# Images for docker-compose.yml: `app` runs the API or the CDC worker (TypeScript through tsx),
# `web` serves the web app's build and forwards /api to the API.
FROM node:20-bookworm-slim AS app
WORKDIR /srv
COPY package.json package-lock.json ./
COPY db/package.json db/
COPY backend/package.json backend/
COPY cdc/package.json cdc/
COPY frontend/package.json frontend/
COPY patches patches/
RUN npm ci --no-audit --no-fund
COPY . .
USER node
EXPOSE 3000

# the web app's production build (frontend/dist)
FROM app AS web-build
USER root
RUN npm run build -w frontend

FROM nginx:1.27-alpine AS web
COPY --from=web-build /srv/frontend/dist /usr/share/nginx/html
COPY deploy/nginx.conf /etc/nginx/conf.d/default.conf
EXPOSE 80
