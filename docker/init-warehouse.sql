-- The warehouse lives next to Airflow's metadata database on the same server.
CREATE DATABASE customer_feed;
