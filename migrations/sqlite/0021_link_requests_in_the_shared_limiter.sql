-- Requests for a sign-in link are counted in the limiter that every limit shares (attempts,
-- migration 0010), which counts nothing for a request it refuses: a stranger's requests refused
-- by the per-client limit no longer use up an address's three links an hour (issue 17 review).
-- Keep in step with migrations/postgres/0021_link_requests_in_the_shared_limiter.sql.
DROP TABLE reader_link_requests;
